"""The order remembers which step failed and its HTTP status, for the admin's list."""

import pytest

from orders.models import Order
from orders.services import order_reprocess
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_failed_step_is_the_call_that_failed_not_the_end_step_after_it(server):
    server.route("POST", "/charge", Reply(422, {"reason": "card declined"}))
    steps = [
        {"id": "charge", "call": "pay", "on_failed": "refuse"},
        {"id": "refuse", "end": "failed", "error": "payment refused"},
    ]
    order = process(make_order(steps, [api_call("pay", server.url + "/charge")]))

    assert order.status == Order.Status.FAILED
    assert (order.failed_step, order.failed_http_status) == ("charge", 422)


def test_a_failure_without_on_failed_names_its_step(server):
    server.route("POST", "/charge", Reply(500, {}))
    order = process(
        make_order([{"id": "charge", "call": "pay"}], [api_call("pay", server.url + "/charge")])
    )

    assert (order.failed_step, order.failed_http_status) == ("charge", 500)


def test_a_new_run_forgets_the_failure(server):
    server.route("POST", "/charge", Reply(500, {}))
    order = process(
        make_order([{"id": "charge", "call": "pay"}], [api_call("pay", server.url + "/charge")])
    )

    order_reprocess(order=order, start_from="failed", actor="support")
    order.refresh_from_db()

    assert order.status == Order.Status.PENDING
    assert (order.failed_step, order.failed_http_status) == ("", None)
