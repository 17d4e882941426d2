"""Secrets reach the API they are meant for and never any stored row."""

import json

import pytest
from django.apps import apps
from django.core import serializers

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "tok-9f8e7d6c5b4a"


def everything_stored() -> str:
    rows = []
    for model in apps.get_models():
        rows.append(serializers.serialize("json", model.objects.all()))
    return "\n".join(rows)


def test_secrets_are_sent_but_never_stored(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    server.route("POST", "/charge", lambda request: Reply(500, {"echo": request.headers["X-Key"]}))
    calls = [
        api_call(
            "charge",
            server.url + "/charge?key={{ secrets.PAY_TOKEN }}",
            headers={
                "Authorization": "Bearer {{ secrets.PAY_TOKEN }}",
                "X-Key": "{{ secrets.PAY_TOKEN }}",
            },
            query={"sig": "{{ secrets.PAY_TOKEN }}"},
            body={"token": "{{ secrets.PAY_TOKEN }}", "note": "key={{ secrets.PAY_TOKEN }}"},
            retry={"max_attempts": 2, "backoff_seconds": 0.01},
        )
    ]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.FAILED
    sent = server.requests_to("/charge")[0]
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.body["token"] == SECRET
    stored = everything_stored()
    assert SECRET not in stored
    assert "***" in json.dumps(order.log.first().request)


def test_a_failing_expression_message_does_not_leak_a_secret(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    # An undefined key's message names the key: here, the secret's value.
    calls = [api_call("a", server.url + "/a", body={"x": "{{ input[secrets.PAY_TOKEN] }}"})]
    order = process(make_order([{"id": "a", "call": "a"}], calls))

    assert order.status == Order.Status.FAILED
    assert SECRET not in everything_stored()


def test_the_state_of_a_step_waiting_for_its_callback_holds_no_secret(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    server.route("POST", "/pay", lambda request: Reply(200, {"echo": request.body["auth"]}))
    calls = [api_call("pay", server.url + "/pay", body={"auth": "{{ params.auth }}"})]
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "params": {"auth": "{{ secrets.PAY_TOKEN }}"},
            "wait_for_callback": {"timeout_seconds": 60},
        }
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.WAITING
    assert server.requests_to("/pay")[0].body == {"auth": SECRET}
    assert SECRET not in everything_stored()
