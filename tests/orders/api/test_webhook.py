"""POST /api/orders/: the webhook, every response it can give."""

import io
import json
import wsgiref.util
from dataclasses import replace

import pytest
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.throttling import ScopedRateThrottle

from apicalls.models import ApiCall
from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from core import api
from orders.models import Order
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import SHOP_SCHEMA

URL = "/api/orders/"
ORDER = {"order_id": "A-1", "workflow": "shop", "payload": {"sku": "mug", "qty": 2}}


def post(client, body=ORDER, **extra):
    return client.post(URL, body, format="json", **extra)


def test_new_order_is_created_pending_at_the_first_step(integration, shop):
    response = post(integration)

    assert response.status_code == 201
    assert response.json()["order_id"] == "A-1"
    assert response.json()["status"] == "pending"
    assert response.json()["current_step"] == "charge"
    assert response.json()["payload"] == ORDER["payload"]
    assert Order.objects.get(order_id="A-1").snapshot.workflow == "shop"


def test_same_request_again_returns_the_existing_order_with_200(integration, shop):
    first = post(integration)

    again = post(integration)

    assert again.status_code == 200
    assert again.json()["created_at"] == first.json()["created_at"]
    assert Order.objects.count() == 1


@pytest.mark.parametrize("change", [{"payload": {"sku": "mug", "qty": 3}}, {"workflow": "other"}])
def test_same_order_id_with_other_content_is_a_conflict(integration, shop, change):
    post(integration)

    response = post(integration, {**ORDER, **change})

    assert response.status_code == 409
    assert "A-1" in response.json()["detail"]


@pytest.mark.parametrize("qty", [2.0, True, "2"])
def test_the_same_request_compares_json_values_exactly(integration, shop, qty):
    post(integration)

    response = post(integration, {**ORDER, "payload": {**ORDER["payload"], "qty": qty}})

    assert response.status_code == 409
    assert Order.objects.get().payload["qty"] == 2


@pytest.mark.parametrize("qty", [2.0, 1e300])
def test_the_same_request_with_a_float_is_answered_200(integration, shop, qty):
    body = {**ORDER, "payload": {"qty": qty, "sku": "mug", "note": {"b": [1, True], "a": None}}}
    assert post(integration, body).status_code == 201

    assert post(integration, body).status_code == 200


def test_unknown_workflow_is_refused_with_the_reason(integration, shop):
    response = post(integration, {**ORDER, "workflow": "nope"})

    assert response.status_code == 400
    assert response.json() == {"errors": ['workflow: no workflow "nope"']}
    assert not Order.objects.exists()


def test_payload_failing_the_input_schema_lists_every_error_with_its_path(integration, shop):
    response = post(integration, {**ORDER, "payload": {"qty": 0}})

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            "payload: 'sku' is a required property",
            "payload.qty: 0 is less than the minimum of 1",
        ]
    }


def test_malformed_json_is_refused_with_the_reason(integration, shop):
    response = integration.post(URL, '{"order_id": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("body: JSON parse error")


def test_missing_fields_are_named(integration, shop):
    response = post(integration, {"order_id": "A-1"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        "workflow: This field is required.",
        "payload: This field is required.",
    ]


def test_no_token_is_401_with_a_challenge(anonymous, shop):
    response = post(anonymous)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_401(anonymous, shop):
    response = post(anonymous, HTTP_AUTHORIZATION="Token not-a-real-token")

    assert response.status_code == 401


def test_body_over_the_limit_is_413_before_parsing(integration, shop, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, max_request_bytes=100)
    body = {**ORDER, "payload": {"sku": "x" * 200, "qty": 1}}

    response = post(integration, body)

    assert response.status_code == 413
    assert response.json() == {"errors": ["body: larger than 100 bytes"]}
    assert not Order.objects.exists()


def call_wsgi(body: bytes, headers: dict) -> tuple[str, bytes]:
    """A raw WSGI request: the test client always sets Content-Length, a chunked one has none."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": URL,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/json",
        **headers,
    }
    wsgiref.util.setup_testing_defaults(environ)
    environ["SERVER_NAME"] = "testserver"
    environ["HTTP_HOST"] = "testserver"
    started = {}
    chunks = WSGIHandler()(environ, lambda status, _headers: started.update(status=status))
    return started["status"], b"".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_chunked_body_over_the_limit_is_413(integration, shop, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, max_request_bytes=100)
    body = json.dumps({**ORDER, "payload": {"sku": "x" * 200, "qty": 1}}).encode()
    token = integration._credentials["HTTP_AUTHORIZATION"]

    status, content = call_wsgi(
        body, {"HTTP_TRANSFER_ENCODING": "chunked", "HTTP_AUTHORIZATION": token}
    )

    assert status.startswith("413")
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_chunked_body_under_the_limit_is_read(integration, shop):
    token = integration._credentials["HTTP_AUTHORIZATION"]

    status, content = call_wsgi(
        json.dumps(ORDER).encode(),
        {"HTTP_TRANSFER_ENCODING": "chunked", "HTTP_AUTHORIZATION": token},
    )

    assert status.startswith("201"), content
    assert Order.objects.filter(order_id="A-1").exists()


def test_webhook_is_throttled_per_token(integration, shop, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"webhook": "2/minute"})
    post(integration, {**ORDER, "order_id": "A-1"})
    post(integration, {**ORDER, "order_id": "A-2"})

    response = post(integration, {**ORDER, "order_id": "A-3"})

    assert response.status_code == 429


# What a post costs, and the definitions and permissions it relies on meanwhile.


@pytest.mark.django_db(transaction=True)
def test_a_new_order_costs_three_queries(integration, shop):
    """The token, the check that the workflow's definitions are those in memory, the INSERT
    (the first post of a workflow and of a token read them, and are not counted)."""
    post(integration, {**ORDER, "order_id": "A-0"})

    with CaptureQueriesContext(connection) as queries:
        response = post(integration)

    assert response.status_code == 201
    assert len(queries) == 3, [query["sql"] for query in queries]


@pytest.mark.django_db(transaction=True)
def test_the_same_request_again_costs_six_queries(integration, shop):
    """The token, the definitions, the INSERT refused, the order, then the order as GET
    reads it with its log."""
    post(integration)

    with CaptureQueriesContext(connection) as queries:
        response = post(integration)

    assert response.status_code == 200
    assert len(queries) == 6, [query["sql"] for query in queries]


def test_a_new_order_is_answered_as_get_shows_it(integration, superuser, shop):
    created = post(integration)

    assert created.json() == superuser.get(f"{URL}A-1/").json()
    assert created.json()["log"] == []


def test_an_edited_blueprint_is_used_by_the_next_order(integration, shop):
    post(integration, {**ORDER, "order_id": "A-1"})
    steps = [{"id": "ship", "call": "shop.charge", "end": "completed"}]
    blueprint_save(definition={**shop.as_definition(), "steps": steps})

    response = post(integration, {**ORDER, "order_id": "A-2"})

    assert response.json()["current_step"] == "ship"
    assert response.json()["blueprint_version"] == 2
    assert Order.objects.get(order_id="A-1").snapshot.blueprint_version == 1


def test_an_edited_api_call_is_in_the_next_orders_snapshot(integration, shop):
    post(integration, {**ORDER, "order_id": "A-1"})
    charge = ApiCall.objects.get(slug="shop.charge").as_definition()
    api_call_save(definition={**charge, "url": "http://127.0.0.1:9/charge-v2"})

    post(integration, {**ORDER, "order_id": "A-2"})

    first, second = (Order.objects.get(order_id=i).snapshot for i in ("A-1", "A-2"))
    assert first.definition["api_calls"]["shop.charge"]["url"].endswith("/charge")
    assert second.definition["api_calls"]["shop.charge"]["url"].endswith("/charge-v2")


def test_a_blueprint_changed_without_a_new_version_is_seen_too(integration, shop):
    post(integration, {**ORDER, "order_id": "A-1"})
    shop.input_schema = {**SHOP_SCHEMA, "required": ["sku", "qty", "email"]}
    shop.save()

    response = post(integration, {**ORDER, "order_id": "A-2"})

    assert response.status_code == 400
    assert response.json() == {"errors": ["payload: 'email' is a required property"]}


def test_a_tightened_input_schema_refuses_new_orders_not_the_same_request(integration, shop):
    post(integration)
    schema = {**SHOP_SCHEMA, "properties": {**SHOP_SCHEMA["properties"], "qty": {"minimum": 5}}}
    blueprint_save(definition={**shop.as_definition(), "input_schema": schema})

    assert post(integration).status_code == 200
    assert post(integration, {**ORDER, "order_id": "A-2"}).status_code == 400


def test_the_same_request_after_its_workflow_was_deleted(integration, shop):
    post(integration)
    shop.delete()

    assert post(integration).status_code == 200
    assert post(integration, {**ORDER, "payload": {"sku": "cup", "qty": 1}}).status_code == 409
    assert post(integration, {**ORDER, "order_id": "A-2"}).status_code == 400


def test_a_permission_taken_away_counts_until_the_kept_answer_expires(integration, shop):
    assert post(integration, {**ORDER, "order_id": "A-1"}).status_code == 201
    integration.user.groups.clear()

    assert post(integration, {**ORDER, "order_id": "A-2"}).status_code == 201


def test_a_permission_taken_away_is_refused_once_the_answer_expired(integration, shop, monkeypatch):
    monkeypatch.setattr(api, "PERMISSION_CACHE_SECONDS", 0.0)
    assert post(integration, {**ORDER, "order_id": "A-1"}).status_code == 201
    integration.user.groups.clear()

    assert post(integration, {**ORDER, "order_id": "A-2"}).status_code == 403


def test_a_deactivated_user_is_refused_at_once(integration, shop):
    assert post(integration, {**ORDER, "order_id": "A-1"}).status_code == 201
    User.objects.filter(pk=integration.user.pk).update(is_active=False)

    response = post(integration, {**ORDER, "order_id": "A-2"})

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


def test_a_throttled_post_says_when_to_retry(integration, shop, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"webhook": "1/minute"})
    post(integration, {**ORDER, "order_id": "A-1"})

    response = post(integration, {**ORDER, "order_id": "A-2"})

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


def test_a_token_holding_nul_is_401(anonymous, shop):
    response = post(anonymous, HTTP_AUTHORIZATION="Token abc\x00def")

    assert response.status_code == 401
