"""Saving and deleting API calls: validation, versions, refusal while in use."""

import pytest

from apicalls.models import ApiCall, ApiCallVersion
from apicalls.services import api_call_delete, api_call_save
from blueprints.services import blueprint_save
from definitions.validation import DefinitionError
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db


def test_new_api_call_is_version_one_with_its_contract_json(editor):
    api_call = api_call_save(definition=definitions.api_call(), user=editor)
    version = api_call.versions.get()
    assert (api_call.version, version.version) == (1, 1)
    assert version.definition == definitions.api_call()
    assert version.created_by == editor


def test_api_call_columns_hold_slug_and_name_and_definition_the_rest():
    api_call = api_call_save(definition=definitions.api_call())
    assert (api_call.slug, api_call.name) == ("payments.charge", "Charge the customer's card")
    assert "slug" not in api_call.definition and "name" not in api_call.definition
    assert api_call.as_definition() == definitions.api_call()


def test_changed_api_call_gets_a_new_version():
    api_call_save(definition=definitions.api_call())
    changed = {**definitions.api_call(), "timeout_seconds": 30}
    api_call = api_call_save(definition=changed)
    assert api_call.version == 2
    assert [v.definition["timeout_seconds"] for v in api_call.versions.order_by("version")] == [
        10,
        30,
    ]


def test_identical_api_call_save_adds_no_version():
    api_call_save(definition=definitions.api_call())
    api_call = api_call_save(definition=definitions.api_call())
    assert api_call.version == 1
    assert ApiCallVersion.objects.count() == 1


def test_invalid_api_call_is_not_saved():
    with pytest.raises(DefinitionError) as caught:
        api_call_save(definition={**definitions.api_call(), "method": "FETCH"})
    assert caught.value.errors == ['method: must be one of "GET", "POST", "PUT", "PATCH", "DELETE"']
    assert not ApiCall.objects.exists()


def test_unused_api_call_is_deleted():
    api_call = api_call_save(definition=definitions.api_call())
    api_call_delete(api_call=api_call)
    assert not ApiCall.objects.exists()


def test_api_call_used_by_a_blueprint_is_not_deleted(example_api_calls):
    blueprint_save(definition=definitions.blueprint())
    mail = ApiCall.objects.get(slug="mail.send")
    with pytest.raises(DefinitionError) as caught:
        api_call_delete(api_call=mail)
    assert caught.value.errors == ['slug: used by blueprint "ecommerce-order"']
    assert ApiCall.objects.filter(slug="mail.send").exists()
