"""/api/api-calls/: CRUD by slug in the contract's JSON, validated as in the admin."""

import pytest

from apicalls.models import ApiCall
from tests.statemanager.fixtures import *  # noqa: F403

CHARGE = {
    "slug": "payments.charge",
    "name": "Charge the customer's card",
    "method": "POST",
    "url": "{{ secrets.PAYMENTS_URL }}/charges",
    "body": {"amount": "{{ data.total }}"},
    "retry": {"max_attempts": 3},
}


@pytest.fixture(autouse=True)
def _payments_url(monkeypatch):
    """The secret CHARGE reads is set here, as on a configured machine."""
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_URL", "https://pay.example.test")


def test_create_returns_the_contract_json(editor):
    response = editor.post("/api/api-calls/", CHARGE, format="json")

    assert response.status_code == 201
    assert response.json() == CHARGE
    assert ApiCall.objects.get(slug="payments.charge").version == 1


def test_read_one_and_list(editor):
    editor.post("/api/api-calls/", CHARGE, format="json")

    one = editor.get("/api/api-calls/payments.charge/")
    listed = editor.get("/api/api-calls/")

    assert one.json() == CHARGE
    assert listed.json()["results"] == [CHARGE]


def test_invalid_definition_lists_every_error_with_its_place(editor):
    bad = {**CHARGE, "method": "FETCH", "url": "{{ nope | unknown_function }}"}

    response = editor.post("/api/api-calls/", bad, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(error.startswith("method: ") for error in errors)
    assert any(error.startswith("url: ") for error in errors)
    assert not ApiCall.objects.exists()


def test_create_refuses_an_existing_slug(editor):
    editor.post("/api/api-calls/", CHARGE, format="json")

    response = editor.post("/api/api-calls/", CHARGE, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("slug: ")


def test_replace_bumps_the_version(editor):
    editor.post("/api/api-calls/", CHARGE, format="json")
    changed = {key: value for key, value in CHARGE.items() if key != "retry"}

    response = editor.put("/api/api-calls/payments.charge/", changed, format="json")

    assert response.status_code == 200
    assert response.json() == changed
    assert ApiCall.objects.get().version == 2


def test_patch_changes_some_keys(editor):
    editor.post("/api/api-calls/", CHARGE, format="json")

    response = editor.patch(
        "/api/api-calls/payments.charge/", {"timeout_seconds": 5}, format="json"
    )

    assert response.json() == {**CHARGE, "timeout_seconds": 5}


def test_slug_cannot_change(editor):
    editor.post("/api/api-calls/", CHARGE, format="json")

    response = editor.put(
        "/api/api-calls/payments.charge/", {**CHARGE, "slug": "other"}, format="json"
    )

    assert response.status_code == 400
    assert ApiCall.objects.get().slug == "payments.charge"


def test_delete(editor):
    editor.post("/api/api-calls/", CHARGE, format="json")

    response = editor.delete("/api/api-calls/payments.charge/")

    assert response.status_code == 204
    assert not ApiCall.objects.exists()


def test_delete_of_an_api_call_a_blueprint_uses_is_refused(editor, shop):
    response = editor.delete("/api/api-calls/shop.charge/")

    assert response.status_code == 400
    assert response.json() == {"errors": ['slug: used by blueprint "shop"']}


def test_unknown_slug_is_404(editor):
    assert editor.get("/api/api-calls/nope/").status_code == 404


def test_a_secret_not_set_here_is_a_warning_and_the_call_is_saved(editor, monkeypatch):
    monkeypatch.delenv("STATE_MANAGER_SECRET_PAYMENTS_URL")

    response = editor.post("/api/api-calls/", CHARGE, format="json")

    assert response.status_code == 201
    assert response.json() == {
        **CHARGE,
        "warnings": [
            'url: secret "PAYMENTS_URL" is not set on this machine '
            "(environment variable STATE_MANAGER_SECRET_PAYMENTS_URL)"
        ],
    }
    assert ApiCall.objects.get().version == 1
