import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from tests.statemanager.fixtures import role


@pytest.fixture(autouse=True)
def _message_roles(transactional_db):
    """The roles with the message permissions, made again after a transactional test's
    flush emptied the groups (as `role` does for the first roles migration)."""
    role("Integrations")
    migration = importlib.import_module("statemanager.migrations.0006_message_roles")
    migration.grant_messages(apps, SimpleNamespace(connection=connection))
