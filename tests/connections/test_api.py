"""/api/connections/: CRUD by name in the contract's JSON (section 10), who may do what, a
connection an API call names kept from deletion (409 naming the calls), API calls that
name a missing connection refused, and POST {name}/test/."""

from __future__ import annotations

import pytest

from apicalls.models import ApiCall
from connections.models import Connection
from connections.services import register_tester
from tests.connections.conftest import EXAMPLES, PAYPAL, QUOTE_CALL
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

CONNECTIONS = "/api/connections/"
PAYPAL_URL = "/api/connections/paypal/"


def test_an_editor_creates_a_connection_and_reads_it_back(editor):
    created = editor.post(CONNECTIONS, PAYPAL, format="json")

    assert created.status_code == 201, created.content
    assert {key: value for key, value in created.json().items() if key != "warnings"} == PAYPAL
    assert editor.get(PAYPAL_URL).json() == PAYPAL
    listed = editor.get(CONNECTIONS).json()
    assert listed["count"] == 1 and listed["results"] == [PAYPAL]


def test_creating_a_name_that_exists_is_refused(editor, paypal):
    response = editor.post(CONNECTIONS, {**PAYPAL, "scope": "other"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == ['name: connection "paypal" exists already']
    assert Connection.objects.get().settings["scope"] == ""


def test_put_replaces_the_keys_and_patch_changes_only_what_it_names(editor, paypal):
    patched = editor.patch(PAYPAL_URL, {"scope": "payments"}, format="json")
    assert patched.status_code == 200, patched.content
    assert editor.get(PAYPAL_URL).json() == {**PAYPAL, "scope": "payments"}

    bearer = {"kind": "bearer", "token": "{{ secrets.PAYPAL_TOKEN }}"}
    put = editor.put(PAYPAL_URL, bearer, format="json")

    assert put.status_code == 200, put.content
    assert editor.get(PAYPAL_URL).json() == {"name": "paypal", **bearer}


def test_a_change_is_validated_as_a_create_is(editor, paypal):
    response = editor.patch(PAYPAL_URL, {"client_secret": "s3cr3t"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        "client_secret: must be a {{ secrets.NAME }} expression, not a literal credential"
    ]
    assert Connection.objects.get().settings["client_secret"] == PAYPAL["client_secret"]


def test_a_connection_cannot_be_renamed(editor, paypal):
    response = editor.put(PAYPAL_URL, {**PAYPAL, "name": "paypal2"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == ["name: must match the URL; a name cannot be changed"]


def test_a_body_that_is_not_an_object_is_refused(editor):
    response = editor.post(CONNECTIONS, ["paypal"], format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == ["body: must be a JSON object"]


def test_an_unknown_connection_is_404(editor):
    assert editor.get("/api/connections/nope/").status_code == 404
    assert editor.delete("/api/connections/nope/").status_code == 404
    assert editor.post("/api/connections/nope/test/").status_code == 404


def test_an_editor_deletes_a_connection_no_api_call_names(editor, paypal):
    assert editor.delete(PAYPAL_URL).status_code == 204
    assert not Connection.objects.exists()


def test_a_connection_an_api_call_names_cannot_be_deleted(editor, paypal_call):
    other = {**QUOTE_CALL, "slug": "paypal.capture", "name": "Capture"}
    assert editor.post("/api/api-calls/", other, format="json").status_code == 201

    response = editor.delete(PAYPAL_URL)

    assert response.status_code == 409
    assert response.json()["detail"] == (
        'connection "paypal" is used by the API calls "paypal.capture", "paypal.orders"; '
        "change them to use another connection first"
    )
    assert Connection.objects.filter(name="paypal").exists()


def test_once_no_api_call_names_it_the_connection_can_be_deleted(editor, paypal_call):
    unnamed = {key: value for key, value in QUOTE_CALL.items() if key != "connection"}
    assert editor.put("/api/api-calls/paypal.orders/", unnamed, format="json").status_code == 200

    assert editor.delete(PAYPAL_URL).status_code == 204


def test_an_api_call_naming_a_missing_connection_is_refused(editor):
    response = editor.post("/api/api-calls/", {**QUOTE_CALL, "connection": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == ['connection: no connection named "x"']
    assert not ApiCall.objects.exists()


def test_an_api_call_names_a_connection_that_exists(editor, paypal):
    response = editor.post("/api/api-calls/", QUOTE_CALL, format="json")

    assert response.status_code == 201, response.content
    assert editor.get("/api/api-calls/paypal.orders/").json()["connection"] == "paypal"


def test_an_api_call_connection_must_be_a_name(editor, paypal):
    response = editor.post("/api/api-calls/", {**QUOTE_CALL, "connection": 7}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == ["connection: must be a string"]


def test_support_reads_connections_and_may_not_change_them(support, paypal):
    assert support.get(CONNECTIONS).status_code == 200
    assert support.get(PAYPAL_URL).json() == PAYPAL
    assert support.post(CONNECTIONS, EXAMPLES["bearer"], format="json").status_code == 403
    assert support.patch(PAYPAL_URL, {"scope": "x"}, format="json").status_code == 403
    assert support.delete(PAYPAL_URL).status_code == 403
    assert Connection.objects.get().as_definition() == PAYPAL


def test_integrations_and_anonymous_callers_see_no_connection(integration, anonymous, paypal):
    for client, status in ((integration, 403), (anonymous, 401)):
        assert client.get(CONNECTIONS).status_code == status
        assert client.get(PAYPAL_URL).status_code == status
        assert client.post(CONNECTIONS, EXAMPLES["bearer"], format="json").status_code == status
        assert client.post(f"{PAYPAL_URL}test/").status_code == status


def test_editors_and_support_test_a_connection_through_the_registered_tester(
    editor, support, paypal, tester
):
    for client in (editor, support):
        response = client.post(f"{PAYPAL_URL}test/")

        assert response.status_code == 200
        assert response.json() == {
            "ok": True,
            "summary": "Token fetched from the token URL of paypal.",
            "details": {"status": 200, "access_token": "***", "expires_in": 3600},
        }
    assert tester.seen == ["paypal", "paypal"]


def test_without_a_tester_the_test_says_so(editor, paypal, no_tester):
    response = editor.post(f"{PAYPAL_URL}test/")

    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "summary": "No tester is registered: this process cannot test connections.",
        "details": {},
    }


def test_a_tester_that_raises_is_a_failed_test_that_shows_no_message(editor, paypal):
    """A tester that raises (a fake one, for the wiring) fails the test, and its message,
    which may hold what it would have masked, is not shown."""

    def broken(connection):
        raise RuntimeError("token endpoint said: client_secret=hunter2 is wrong")

    previous = register_tester(broken)
    try:
        response = editor.post(f"{PAYPAL_URL}test/")
    finally:
        register_tester(previous)

    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert "hunter2" not in response.text and "RuntimeError" in response.json()["summary"]


def test_the_openapi_schema_describes_the_connections(support):
    schema = support.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert {"get", "post"} <= set(schema["paths"]["/api/connections/"])
    assert set(schema["paths"]["/api/connections/{name}/"]) >= {"get", "put", "patch", "delete"}
    assert "409" in schema["paths"]["/api/connections/{name}/"]["delete"]["responses"]
    assert "post" in schema["paths"]["/api/connections/{name}/test/"]
    properties = schema["components"]["schemas"]["Connection"]["properties"]
    assert {"name", "kind", "client_secret", "client_certificate", "ca_bundle"} <= set(properties)
