"""Support resolves a waiting callback by hand: the order goes on exactly as if the
partner had posted, and the log says who did it and why."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders.callbacks import CallbackUsed, callback_resolve_by_hand
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
        api_call("pay", server.url + "/pay", body={"notify": "{{ callback.url }}"}),
        api_call("ship", server.url + "/ship"),
    ]
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "wait_for_callback": {"timeout_seconds": 3600},
            "save": {"paid": "{{ callback.data.amount | default('by hand') }}"},
            "on_failed": "unpaid",
        },
        {"id": "ship", "call": "ship", "end": "completed"},
        {"id": "unpaid", "end": "failed", "error": "payment not confirmed"},
    ]
    order = process(make_order(steps, calls))
    assert order.status == Order.Status.WAITING
    return order


def callback_entry(order: Order) -> StepLog:
    return order.log.get(kind=StepLog.Kind.CALLBACK)


def test_resolving_as_failure_fails_the_step_into_on_failed_and_logs_who_and_why(waiting_order):
    order = callback_resolve_by_hand(
        order=waiting_order, outcome="failure", reason="partner says: card expired", actor="ann"
    )

    assert order.status == Order.Status.PENDING  # due at once, like a partner's post
    assert Callback.objects.get(order=order).status == Callback.Status.FAILED
    entry = callback_entry(order)
    assert (entry.step, entry.outcome, entry.actor) == ("pay", "failed", "ann")
    assert entry.request == {"reason": "partner says: card expired"}
    order = process(order)
    assert (order.status, order.error, order.failed_step) == (
        Order.Status.FAILED,
        "payment not confirmed",
        "pay",
    )


def test_resolving_as_success_resumes_the_order_with_the_data_given(server, waiting_order):
    order = callback_resolve_by_hand(
        order=waiting_order,
        outcome="success",
        reason="paid at the counter",
        actor="ann",
        data={"amount": 42},
    )

    order = process(order)
    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"paid": 42}
    assert len(server.requests_to("/ship")) == 1
    assert callback_entry(order).response == {"outcome": "success", "data": {"amount": 42}}


def test_the_api_log_shows_who_resolved_the_callback_and_why(waiting_order, django_user_model):
    callback_resolve_by_hand(
        order=waiting_order, outcome="failure", reason="no answer", actor="ann"
    )
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_superuser("root", password="x"))

    log = client.get(f"/api/orders/{waiting_order.order_id}/").json()["log"]

    (entry,) = [entry for entry in log if entry["kind"] == "callback"]
    assert (entry["actor"], entry["request"], entry["outcome"]) == (
        "ann",
        {"reason": "no answer"},
        "failed",
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(waiting_order, reason):
    with pytest.raises(ValueError, match="say why"):
        callback_resolve_by_hand(order=waiting_order, outcome="failure", reason=reason, actor="ann")

    assert Callback.objects.get(order=waiting_order).status == Callback.Status.WAITING
    assert not waiting_order.log.filter(kind=StepLog.Kind.CALLBACK).exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"data": ["not", "an", "object"]}, "JSON object"),
        ({"reason": "nul \x00 here"}, "reason: contains a NUL character"),
        ({"data": {"note": "nul \x00"}}, "data.note: contains a NUL character"),
        ({"reason": "x" * 1001}, "longer than 1000"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(waiting_order, fields, message):
    arguments = {"outcome": "failure", "reason": "why", "actor": "ann", **fields}
    with pytest.raises(ValueError, match=message):
        callback_resolve_by_hand(order=waiting_order, **arguments)

    assert Callback.objects.get(order=waiting_order).status == Callback.Status.WAITING


def test_a_callback_already_posted_cannot_be_resolved_again(waiting_order):
    token = Callback.objects.get(order=waiting_order).token
    APIClient().post(f"/api/callbacks/{token}/", {"outcome": "success"}, format="json")

    with pytest.raises(CallbackUsed, match="not waiting for a callback"):
        callback_resolve_by_hand(order=waiting_order, outcome="failure", reason="x", actor="ann")

    assert callback_entry(waiting_order).actor == ""  # the partner's post, not ours


def test_a_callback_whose_time_ran_out_cannot_be_resolved(waiting_order):
    Callback.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(CallbackUsed, match="timed out"):
        callback_resolve_by_hand(order=waiting_order, outcome="success", reason="x", actor="ann")

    assert Callback.objects.get(order=waiting_order).status == Callback.Status.EXPIRED
