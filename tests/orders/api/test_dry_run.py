"""POST /api/blueprints/{slug}/dry-run/: the path a blueprint would take, nothing sent."""

from __future__ import annotations

import json

import pytest

from apicalls.services import api_call_save
from blueprints.models import WorkflowSnapshot
from blueprints.services import blueprint_save
from orders.models import Callback, Order, StepLog
from tests.blueprints import definitions
from tests.statemanager.fixtures import *  # noqa: F403

TOKEN = "tok-s3cret/+="
PAYLOAD = {"sku": "TEE", "qty": 2, "email": "ann@example.com"}
DECLINED = {
    "validate": {"body": {"total": 50}},
    "charge": {"status": 402, "body": {"error": "card declined"}},
}


@pytest.fixture
def ecommerce(db, server, monkeypatch):
    """The contract's e-commerce example, every API call pointed at a local server."""
    for name in ("SHOP_URL", "PAYMENTS_URL", "SHIPPING_URL", "MAIL_URL", "OPS_URL"):
        monkeypatch.setenv(f"STATE_MANAGER_SECRET_{name}", server.url)
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", TOKEN)
    for call in definitions.API_CALLS:
        api_call_save(definition=call)
    return blueprint_save(definition=definitions.blueprint())


def dry_run(client, body, slug="ecommerce-order"):
    return client.post(f"/api/blueprints/{slug}/dry-run/", body, format="json")


def test_a_dry_run_shows_the_path_requests_data_and_end(editor, ecommerce):
    response = dry_run(editor, {"payload": PAYLOAD, "responses": DECLINED})

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["workflow"] == "ecommerce-order"
    assert [step["step"] for step in result["steps"]] == ["validate", "route", "charge", "reject"]
    charge = result["steps"][2]
    assert charge["kind"] == "call" and charge["outcome"] == "failed"
    assert charge["error"] == "HTTP 402: card declined" and charge["next"] == "reject"
    attempt = charge["attempts"][0]
    assert attempt["request"]["method"] == "POST"
    assert attempt["request"]["headers"]["Authorization"] == "***"
    assert attempt["response"] == {
        "status": 402,
        "headers": {},
        "body": {"error": "card declined"},
    }
    assert charge["data"] == {"total": 50}
    assert result["end"] == {
        "status": "failed",
        "step": "reject",
        "error": "order could not be charged",
        "data": {"total": 50},
    }


def test_nothing_is_sent_and_nothing_is_saved(editor, ecommerce, server):
    snapshots = WorkflowSnapshot.objects.count()

    response = dry_run(editor, {"payload": PAYLOAD, "responses": DECLINED})

    assert response.status_code == 200
    assert server.received == []  # every API call's URL is this server
    assert WorkflowSnapshot.objects.count() == snapshots
    assert not Order.objects.exists()
    assert not StepLog.objects.exists()
    assert not Callback.objects.exists()
    assert "127.0.0.1" not in json.dumps(response.json())  # the URL secret is masked too
    assert TOKEN not in response.content.decode()


def test_support_may_dry_run_too(support, ecommerce):
    assert dry_run(support, {"payload": PAYLOAD}).status_code == 200


def test_a_dry_run_uses_the_blueprint_as_it_is_now(editor, ecommerce):
    changed = definitions.blueprint()
    changed["steps"][0]["save"] = {"total": "{{ response.body.price }}"}
    blueprint_save(definition=changed)

    response = dry_run(
        editor, {"payload": PAYLOAD, "responses": {"validate": {"body": {"price": 7}}}}
    )

    assert response.json()["steps"][0]["data"] == {"total": 7}


@pytest.mark.parametrize(
    "body, errors",
    [
        ({}, ["payload: This field is required."]),
        (
            {"payload": {"sku": "TEE", "qty": 0}},
            [
                "payload: 'email' is a required property",
                "payload.qty: 0 is less than the minimum of 1",
            ],
        ),
        (
            {"payload": PAYLOAD, "responses": {"chrage": {}, "charge": {"status": "ok"}}},
            [
                "responses.chrage: no step sends a request by this id (call steps: validate, "
                "charge, fulfil.ship, fulfil.mail, review)",
                "responses.charge.status: must be an HTTP status from 100 to 599",
            ],
        ),
        (
            {"payload": PAYLOAD, "responses": ["charge"]},
            ['responses: Expected a dictionary of items but got type "list".'],
        ),
    ],
)
def test_bad_input_is_a_400_naming_each_place(editor, ecommerce, body, errors):
    response = dry_run(editor, body)

    assert response.status_code == 400
    assert response.json() == {"errors": errors}


def test_text_the_database_cannot_store_is_named(editor, ecommerce):
    response = dry_run(editor, {"payload": {"sku": "a\x00b"}})

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("payload.sku:")


def test_an_unknown_blueprint_is_a_404(editor, ecommerce):
    response = dry_run(editor, {"payload": {}}, slug="nosuch")

    assert response.status_code == 404
    assert response.json() == {"detail": "No blueprint has this slug."}


def test_an_integration_may_not_dry_run(integration, ecommerce):
    assert dry_run(integration, {"payload": PAYLOAD}).status_code == 403


def test_an_anonymous_request_is_refused(anonymous, ecommerce):
    assert dry_run(anonymous, {"payload": PAYLOAD}).status_code == 401


def test_the_dry_run_is_in_the_openapi_schema(support, db):
    response = support.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    operation = response.json()["paths"]["/api/blueprints/{slug}/dry-run/"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}
    assert "requestBody" in operation
