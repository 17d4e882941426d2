"""The API while the database cannot be reached: a JSON 503, like /health/, not a 500 page."""

import contextlib
import logging
import socket

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import user_in

pytestmark = pytest.mark.django_db(transaction=True)

UNAVAILABLE = {"detail": "database unavailable"}


@pytest.fixture
def database_down(tmp_path):
    """While in this context, the connection really cannot reach its database: a SQLite file
    in a directory that does not exist, or a PostgreSQL port nobody listens on."""

    @contextlib.contextmanager
    def down():
        saved = dict(connection.settings_dict)
        connection.close()
        if connection.vendor == "sqlite":
            connection.settings_dict["NAME"] = str(tmp_path / "no-such-directory" / "db.sqlite3")
        else:
            with socket.socket() as unused:
                unused.bind(("127.0.0.1", 0))
                port = unused.getsockname()[1]
            connection.settings_dict.update(HOST="127.0.0.1", PORT=port)
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.update(saved)

    return down


def test_a_token_request_is_answered_503_in_json(superuser, database_down):
    superuser.raise_request_exception = False
    with database_down():
        response = superuser.get("/api/orders/")  # token authentication needs the database

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == UNAVAILABLE


def test_the_webhook_is_answered_503_in_json(integration, database_down):
    integration.raise_request_exception = False
    order = {"order_id": "A-1", "workflow": "shop", "payload": {"sku": "S", "qty": 1}}
    with database_down():
        response = integration.post("/api/orders/", order, format="json")

    assert response.status_code == 503
    assert response.json() == UNAVAILABLE


def test_a_browser_with_a_session_gets_the_503_in_json_too(database_down):
    client = APIClient(raise_request_exception=False)
    client.force_login(user_in(None, is_superuser=True, is_staff=True))
    with database_down():
        response = client.get("/api/blueprints/", HTTP_ACCEPT="text/html")

    assert response.status_code == 503
    assert response.json() == UNAVAILABLE


def test_the_outage_is_logged_once_per_request_in_one_line(superuser, database_down, caplog):
    superuser.raise_request_exception = False
    with caplog.at_level(logging.INFO), database_down():
        superuser.get("/api/orders/")

    (record,) = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.getMessage().startswith("Database unavailable: GET /api/orders/ (")
    assert record.status_code == 503
    assert record.exc_info is None
