"""POST /api/orders/: the webhook, every response it can give."""

import io
import json
import wsgiref.util

import pytest
from django.core.handlers.wsgi import WSGIHandler
from rest_framework.throttling import ScopedRateThrottle

from orders.models import Order
from tests.statemanager.fixtures import *  # noqa: F403

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
    settings.STATE_MANAGER = {**settings.STATE_MANAGER, "MAX_REQUEST_BYTES": 100}
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
    settings.STATE_MANAGER = {**settings.STATE_MANAGER, "MAX_REQUEST_BYTES": 100}
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
