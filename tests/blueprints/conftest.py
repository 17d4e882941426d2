import pytest

from apicalls.services import api_call_save
from tests.blueprints import definitions


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_user(username="editor", is_staff=True)


@pytest.fixture
def example_api_calls(db):
    """The e-commerce example's API calls, saved."""
    return [api_call_save(definition=call) for call in definitions.document()["api_calls"]]
