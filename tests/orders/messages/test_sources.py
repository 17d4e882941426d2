"""Message sources: a partner's own signed webhooks straight in (contract section 11), with
a local Stripe-like API, the live server and the engine's entry point."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.utils import timezone

from orders.models import Message, Order
from tests.orders.messages.stripe_like import (
    SOURCE,
    WEBHOOK_SECRET,
    StripeLike,
    stripe_signature,
    succeeded_event,
)
from tests.orders.workflows import api_call, make_order, process
from tests.statemanager.fixtures import *  # noqa: F403

STEPS = [
    {
        "id": "pay",
        "call": "stripe.create_intent",
        "save": {"payment_id": "{{ response.body.id }}"},
    },
    {
        "id": "paid",
        "message": {
            "name": "payment_intent.succeeded",
            "key": "{{ data.payment_id }}",
            "timeout_seconds": 86400,
        },
        "save": {"amount": "{{ message.data.data.object.amount }}", "event": "{{ message.id }}"},
    },
    {"id": "done", "end": "completed"},
]


@pytest.fixture(autouse=True)
def _webhook_secret(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)


@pytest.fixture
def stripe(editor, server, live_server):
    assert editor.post("/api/message-sources/", SOURCE, format="json").status_code == 201
    return StripeLike(server, f"{live_server.url}/api/messages/stripe/")


def payment_order(server, amount=1250):
    create = api_call("stripe.create_intent", f"{server.url}/v1/payment_intents")
    create["body"] = {"amount": "{{ input.amount }}", "currency": "eur"}
    return make_order(STEPS, [create], payload={"amount": amount})


def wait_for(order, status, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.status == status:
            return order
        time.sleep(0.05)
    raise AssertionError(f"order {order.order_id} is {order.status}, not {status}")


def test_the_order_completes_when_the_partner_posts_its_signed_webhook(stripe, server):
    order = process(payment_order(server))
    assert order.status == "waiting" and order.data == {"payment_id": "pi_1"}

    order = process(wait_for(order, "pending"))

    assert stripe.answers[0].status_code == 202 and stripe.answers[0].json() == {"matched": 1}
    assert order.status == "completed"
    assert order.data == {"payment_id": "pi_1", "amount": 1250, "event": "evt_pi_1"}


def test_the_order_completes_when_the_webhook_arrives_before_it_waits(stripe, server):
    stripe.webhook_first = True

    order = process(payment_order(server))

    assert stripe.answers[0].json() == {"matched": 0}  # kept, then taken by the order
    assert order.status == "completed" and order.data["amount"] == 1250


def test_a_forged_webhook_is_a_401_and_stores_nothing(stripe):
    body = succeeded_event("pi_1", 1, "evt_1")

    answer = stripe.post_webhook(body, stripe_signature(body, secret="whsec_guessed"))

    assert answer.status_code == 401 and "does not match" in answer.json()["detail"]
    assert not Message.objects.exists()


def test_a_replayed_stale_webhook_is_a_401_and_stores_nothing(stripe):
    body = succeeded_event("pi_1", 1, "evt_1")

    answer = stripe.post_webhook(body, stripe_signature(body, at=int(time.time()) - 3600))

    assert answer.status_code == 401 and "tolerance of 300 s" in answer.json()["detail"]
    assert not Message.objects.exists()


def test_a_webhook_with_its_body_changed_is_a_401(stripe):
    body = succeeded_event("pi_1", 1, "evt_1")
    signature = stripe_signature(body)

    answer = stripe.post_webhook(body.replace(b'"amount": 1', b'"amount": 9'), signature)

    assert answer.status_code == 401 and not Message.objects.exists()


def test_an_unsigned_webhook_is_a_401(client, editor):
    editor.post("/api/message-sources/", SOURCE, format="json")
    answer = client.post("/api/messages/stripe/", {"id": "evt"}, content_type="application/json")
    assert answer.status_code == 401 and not Message.objects.exists()


def test_the_same_webhook_again_is_a_200_that_changes_nothing(stripe):
    body = succeeded_event("pi_1", 1, "evt_1")

    first, again = stripe.post_webhook(body), stripe.post_webhook(body)

    assert (first.status_code, again.status_code) == (202, 200)
    assert Message.objects.count() == 1


def test_an_unknown_source_is_a_404(client):
    answer = client.post("/api/messages/nope/", {}, content_type="application/json")
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("scheme", "encode"),
    [("hmac_hex", bytes.hex), ("hmac_base64", lambda d: base64.b64encode(d).decode())],
)
def test_plain_hmac_sources_verify_the_body(editor, client, scheme, encode):
    source = {**SOURCE, "name": "carrier", "signature": {"header": "X-Sig", "scheme": scheme}}
    source.update(message_name="shipment.{{ body.event }}", key="{{ body.tracking }}")
    del source["id"]
    assert editor.post("/api/message-sources/", source, format="json").status_code == 201
    body = json.dumps({"event": "delivered", "tracking": "1Z999"}).encode()
    good = encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest())

    def send(signature):
        return client.post(
            "/api/messages/carrier/", body, content_type="application/json", HTTP_X_SIG=signature
        )

    assert send("0" * 64).status_code == 401
    assert send(good).status_code == 202
    message = Message.objects.get()
    assert (message.name, message.key, message.source) == ("shipment.delivered", "1Z999", "carrier")


def test_a_literal_secret_is_refused_naming_the_field(editor):
    answer = editor.post("/api/message-sources/", {**SOURCE, "secret": "whsec_x"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        "secret: must be a {{ secrets.NAME }} expression, not a literal secret"
    ]


def test_a_bad_expression_is_refused_at_save_as_place_and_reason(editor):
    source = {**SOURCE, "key": "{{ bdy.data.object.id }}", "message_name": "{{ body.type | nope }}"}
    errors = editor.post("/api/message-sources/", source, format="json").json()["errors"]
    assert any(error.startswith("key: ") and '"bdy"' in error for error in errors)
    assert any(error.startswith("message_name: ") and "nope" in error for error in errors)


def test_support_views_sources_and_editors_manage_them(editor, support):
    assert support.post("/api/message-sources/", SOURCE, format="json").status_code == 403
    assert editor.post("/api/message-sources/", SOURCE, format="json").status_code == 201
    assert support.get("/api/message-sources/stripe/").json() == SOURCE
    assert support.delete("/api/message-sources/stripe/").status_code == 403
    assert editor.delete("/api/message-sources/stripe/").status_code == 204


def test_the_secret_is_masked_in_what_is_stored(stripe):
    body = json.dumps(
        {"id": "evt_9", "type": "x", "data": {"object": {"id": "pi_9", "echo": WEBHOOK_SECRET}}}
    ).encode()

    assert stripe.post_webhook(body).status_code == 202

    stored = json.dumps(Message.objects.get().data)
    assert WEBHOOK_SECRET not in stored and "***" in stored


def test_an_order_waiting_a_day_is_due_at_its_timeout(stripe, server):
    stripe.delay = 60  # the webhook does not come during the test
    order = process(payment_order(server))
    assert order.status == "waiting"
    assert (order.due_at - timezone.now()).total_seconds() > 86000
    assert Order.objects.get(pk=order.pk).message_waits.get().key == "pi_1"


def test_a_source_name_the_database_cannot_hold_is_a_404(client):
    answer = client.post("/api/messages/a%00b/", {}, content_type="application/json")
    assert answer.status_code == 404


def test_a_tolerance_over_a_day_is_refused(editor):
    answer = editor.post(
        "/api/message-sources/", {**SOURCE, "tolerance_seconds": 10**12}, format="json"
    )
    assert answer.status_code == 400 and "tolerance_seconds" in answer.content.decode()
