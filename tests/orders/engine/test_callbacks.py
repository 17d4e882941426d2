"""`wait_for_callback`: the order waits until the outside system posts to its callback URL."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders.engine.journal import Journal
from orders.models import Callback, Order, StepLog
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def waiting_order(server):
    """An order whose `pay` step went out and now waits for its callback."""
    server.route("POST", "/pay", Reply(202, {"session": "s1"}))
    server.route("POST", "/ship", Reply(200, {}))
    calls = [
        api_call(
            "pay",
            server.url + "/pay",
            body={"notify": "{{ callback.url }}", "token": "{{ callback.token }}"},
        ),
        api_call("ship", server.url + "/ship"),
    ]
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "wait_for_callback": {"timeout_seconds": 3600},
            "save": {
                "paid": "{{ callback.data.amount }}",
                "session": "{{ response.body.session }}",
            },
            "on_failed": "unpaid",
        },
        {"id": "ship", "call": "ship", "end": "completed"},
        {"id": "unpaid", "end": "failed", "error": "payment not confirmed"},
    ]
    return process(make_order(steps, calls))


def posted_token(server) -> str:
    return server.requests_to("/pay")[0].body["token"]


def post_callback(token: str, outcome: str, data=None):
    return APIClient().post(
        f"/api/callbacks/{token}/", {"outcome": outcome, "data": data or {}}, format="json"
    )


def test_the_call_sees_an_absolute_callback_url_and_the_order_waits(server, waiting_order):
    body = server.requests_to("/pay")[0].body
    assert body["notify"] == f"http://127.0.0.1:8000/api/callbacks/{body['token']}/"
    assert waiting_order.status == Order.Status.WAITING
    assert server.requests_to("/ship") == []


def test_a_success_callback_resumes_the_order_and_save_sees_its_data(server, waiting_order):
    response = post_callback(posted_token(server), "success", {"amount": 42})
    assert response.status_code == 202

    order = process(waiting_order)
    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"paid": 42, "session": "s1"}
    assert len(server.requests_to("/ship")) == 1


def test_a_failure_callback_fails_the_step_into_on_failed(server, waiting_order):
    assert post_callback(posted_token(server), "failure").status_code == 202

    order = process(waiting_order)
    assert order.status == Order.Status.FAILED
    assert order.error == "payment not confirmed"


def test_no_callback_before_the_timeout_fails_the_step(server, waiting_order):
    past = timezone.now() - timedelta(seconds=1)
    Callback.objects.update(expires_at=past)
    Order.objects.filter(pk=waiting_order.pk).update(due_at=past)

    order = process(waiting_order)
    assert order.status == Order.Status.FAILED
    assert order.error == "payment not confirmed"
    assert "no callback within 3600 seconds" in order.log.filter(step="pay").last().error
    assert post_callback(posted_token(server), "success").status_code == 409


def test_a_token_works_once(server, waiting_order):
    token = posted_token(server)
    assert post_callback(token, "success").status_code == 202
    assert post_callback(token, "success").status_code == 409


def test_an_unknown_token_is_not_found(waiting_order):
    assert post_callback("no-such-token", "success").status_code == 404


def logged_callback_data(order: Order):
    return order.log.get(kind=StepLog.Kind.CALLBACK).response["data"]


def stored_bytes(value) -> int:
    """The size of a value as the log stores it: UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False).encode())


def test_callback_data_within_the_log_limit_in_utf8_bytes_is_logged_whole(server, waiting_order):
    data = {"note": "é" * 2000}  # 4,012 bytes of UTF-8 JSON; 12,012 characters ASCII-escaped
    assert stored_bytes(data) <= 4096

    assert post_callback(posted_token(server), "success", data).status_code == 202

    assert logged_callback_data(waiting_order) == data


def test_callback_data_over_the_log_limit_is_cut_to_it_in_utf8_bytes(server, waiting_order):
    data = {"note": "日本" * 2000}  # 12,012 bytes of UTF-8 JSON

    assert post_callback(posted_token(server), "success", data).status_code == 202

    logged = logged_callback_data(waiting_order)
    assert 4000 < stored_bytes(logged) <= 4096  # cut at the limit, not short of it
    assert logged.startswith('{"note": "日本日本')  # the text, not its escapes
    assert logged.endswith(f"… [truncated, {stored_bytes(data)} bytes in all]")


def test_a_callback_that_beats_the_call_response_is_not_lost(server):
    """The outside system may post back before the call that announced the URL returns."""

    def pay_and_call_back(request):
        from django.db import connection

        from orders.callbacks import callback_receive

        callback_receive(token=request.body["token"], outcome="success", data={"amount": 5})
        connection.close()
        return Reply(200, {})

    server.route("POST", "/pay", pay_and_call_back)
    calls = [api_call("pay", server.url + "/pay", body={"token": "{{ callback.token }}"})]
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "wait_for_callback": {"timeout_seconds": 60},
            "save": {"paid": "{{ callback.data.amount }}"},
        }
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"paid": 5}


def test_the_callback_timeout_counts_from_the_successful_call_not_the_first_attempt(server):
    replies = [Reply(503, headers={"Retry-After": "2"}), Reply(200, {})]
    server.route(
        "POST", "/pay", lambda _request: replies.pop(0) if len(replies) > 1 else replies[0]
    )
    calls = [
        api_call(
            "pay",
            server.url + "/pay",
            body={"token": "{{ callback.token }}"},
            retry={"max_attempts": 2},
        )
    ]
    steps = [{"id": "pay", "call": "pay", "wait_for_callback": {"timeout_seconds": 1.5}}]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.WAITING
    assert order.due_at > timezone.now()
    assert post_callback(posted_token(server), "success").status_code == 202


def test_a_token_of_a_step_that_failed_cannot_wake_the_order(server):
    server.route("POST", "/pay", Reply(500, {}))
    server.route("POST", "/later", Reply(503, headers={"Retry-After": "3600"}))
    calls = [
        api_call("pay", server.url + "/pay", body={"token": "{{ callback.token }}"}),
        api_call("later", server.url + "/later", retry={"max_attempts": 2}),
    ]
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "wait_for_callback": {"timeout_seconds": 3600},
            "on_failed": "later",
        },
        {"id": "later", "call": "later"},
    ]
    order = process(make_order(steps, calls))
    assert order.status == Order.Status.WAITING  # for the retry of `later`, an hour away

    assert post_callback(posted_token(server), "success").status_code == 409
    order.refresh_from_db()
    assert order.status == Order.Status.WAITING
    assert order.due_at > timezone.now() + timedelta(minutes=50)


def test_a_secret_that_happens_to_be_part_of_the_callback_token_does_not_lose_the_callback(
    server, monkeypatch
):
    monkeypatch.setattr(Journal, "callback_token", lambda self, *, step: "f00d" * 10)
    monkeypatch.setenv("STATE_MANAGER_SECRET_PIN", "f00d")
    server.route("POST", "/pay", Reply(202, {}))
    calls = [api_call("pay", server.url + "/pay", body={"token": "{{ callback.token }}"})]
    steps = [{"id": "pay", "call": "pay", "wait_for_callback": {"timeout_seconds": 3600}}]
    order = process(make_order(steps, calls))
    assert order.status == Order.Status.WAITING

    assert post_callback("f00d" * 10, "success").status_code == 202
    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
