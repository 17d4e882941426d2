"""A failed order resumed at its failed step, or run again from the start, as a new run."""

import pytest

from orders.models import Order
from orders.services import order_reprocess
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


def flaky(*replies: Reply):
    queue = list(replies)
    return lambda _request: queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def failed_order(server):
    """quote saves a total, charge fails once (500), its on_failed path saves a note and ends."""
    server.route("POST", "/quote", Reply(200, {"total": 40}))
    server.route("POST", "/charge", flaky(Reply(500), Reply(201, {"id": "ch_1"})))
    calls = [
        api_call("quote", server.url + "/quote"),
        api_call("charge", server.url + "/charge", body={"amount": "{{ data.total }}"}),
        api_call("note", server.url + "/quote"),
    ]
    steps = [
        {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
        {
            "id": "charge",
            "call": "charge",
            "save": {"charge": "{{ response.body.id }}"},
            "on_failed": "note",
        },
        {"id": "done", "end": "completed"},
        {"id": "note", "call": "note", "save": {"noted": "{{ error.step }}"}, "next": "reject"},
        {"id": "reject", "end": "failed", "error": "not charged"},
    ]
    order = process(make_order(steps, calls))
    assert order.status == Order.Status.FAILED
    assert order.data == {"total": 40, "noted": "charge"}
    return order


def test_reprocess_from_failed_resumes_at_the_failed_step_with_the_data_saved_before_it(
    server, failed_order
):
    order_reprocess(order=failed_order, start_from="failed", actor="support")
    order = process(failed_order)

    assert order.status == Order.Status.COMPLETED
    assert order.run == 2
    assert order.data == {"total": 40, "charge": "ch_1"}
    assert len(server.requests_to("/quote")) == 2  # quote once, the on_failed note once
    assert server.requests_to("/charge")[1].body == {"amount": 40}


def test_a_new_run_sends_new_idempotency_keys_and_keeps_the_earlier_log(server, failed_order):
    order_reprocess(order=failed_order, start_from="failed", actor="support")
    order = process(failed_order)

    first, second = server.requests_to("/charge")
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    runs = [(entry.run, entry.step, entry.outcome) for entry in attempts(order)]
    assert runs == [
        (1, "quote", "succeeded"),
        (1, "charge", "failed"),
        (1, "note", "succeeded"),
        (2, "charge", "succeeded"),
    ]
    reprocess = order.log.get(kind="reprocess")
    assert (reprocess.run, reprocess.actor, reprocess.step) == (2, "support", "charge")


def test_reprocess_from_the_start_begins_with_empty_data_at_the_first_step(server, failed_order):
    server.route("POST", "/quote", Reply(200, {"total": 55}))
    order_reprocess(order=failed_order, start_from="start", actor="support")
    order = process(failed_order)

    assert order.status == Order.Status.COMPLETED
    assert order.data == {"total": 55, "charge": "ch_1"}
    assert [entry.step for entry in attempts(order) if entry.run == 2] == ["quote", "charge"]
