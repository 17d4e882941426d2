"""How a step's writes reach the database: one commit per step, nothing lost to a crash.

A step's outcome (the order's update and its log rows) is written with the next call's
attempt row, before that call is sent; these tests pin what that must keep.
"""

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hosts.rules import current_rules
from orders.claims import claim_due_orders
from orders.engine import flow
from orders.engine.config import EngineConfig
from orders.engine.runner import advance_order
from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


class Crash(BaseException):
    """The worker process dying: nothing in the engine catches it."""


def three_calls(server) -> Order:
    for path in ("/a", "/b", "/c"):
        server.route("POST", path, Reply(200, {"ref": path}))
    api_calls = [api_call(name, f"{server.url}/{name}") for name in "abc"]
    return make_order([{"id": name, "call": name} for name in "abc"], api_calls)


def test_a_worker_that_stops_between_a_response_and_the_next_call_reruns_only_that_step(
    server, monkeypatch
):
    order = three_calls(server)
    render = flow.render_request

    def crash_before_b(api_call, context, *, idempotency_key):
        if api_call["slug"] == "b":
            raise Crash
        return render(api_call, context, idempotency_key=idempotency_key)

    monkeypatch.setattr(flow, "render_request", crash_before_b)
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)
    with pytest.raises(Crash):
        advance_order(claim.order_pk, claim.token)
    monkeypatch.setattr(flow, "render_request", render)

    order.refresh_from_db()
    assert (order.status, order.current_step, order.steps_in_run) == ("running", "a", 0)
    assert list(order.log.values_list("step", "outcome")) == [("a", "in_flight")]

    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    order = process(order)

    assert order.status == "completed"
    keys = Counter(request.headers["Idempotency-Key"] for request in server.received)
    assert sorted(keys.values()) == [1, 1, 2]  # a ran again, with its key; b and c once
    assert len(server.requests_to("/a")) == 2
    assert list(order.log.order_by("id").values_list("step", "outcome")) == [
        ("a", "interrupted"),
        ("a", "succeeded"),
        ("b", "succeeded"),
        ("c", "succeeded"),
    ]


def test_log_rows_written_with_an_attempt_keep_their_order(server):
    server.route("POST", "/a", Reply(200, {"go": True}))
    server.route("POST", "/b", Reply(200, {}))
    api_calls = [api_call("a", server.url + "/a"), api_call("b", server.url + "/b")]
    steps = [
        {"id": "a", "call": "a", "save": {"go": "{{ response.body.go }}"}},
        {"id": "pick", "choice": [{"when": "{{ data.go }}", "next": "b"}], "default": "no"},
        {"id": "b", "call": "b", "next": "done"},
        {"id": "no", "end": "failed"},
        {"id": "done", "end": "completed"},
    ]
    order = process(make_order(steps, api_calls))

    assert order.status == "completed"
    assert list(order.log.order_by("id").values_list("step", "kind", "outcome")) == [
        ("a", "attempt", "succeeded"),
        ("a", "step", "succeeded"),  # what it saved
        ("pick", "step", "succeeded"),
        ("b", "attempt", "succeeded"),
        ("done", "step", "succeeded"),
    ]
    assert order.data == {"go": True}


@pytest.mark.postgres
def test_each_step_makes_one_round_trip_on_postgresql(server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement writes are PostgreSQL's (DATABASE_URL=postgres://...)")
    # The breaker's counts go to the database apart from the steps, at most once a second.
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, breaker_min_calls=0)
    order = three_calls(server)
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)
    config = EngineConfig.from_settings()
    config.workflow(order.snapshot_id)  # a batch reads each snapshot once, for all its orders
    current_rules()  # the hosts' rows: read once a second per process, not once per step

    with CaptureQueriesContext(connection) as queries:
        assert advance_order(claim.order_pk, claim.token, config) == "completed"

    # The order's read (its interrupted attempts fixed in the same statement), each
    # attempt's row (the step before's outcome with it), and the end.
    statements = [query["sql"].split()[0] for query in queries]
    assert statements == ["WITH", "INSERT", "WITH", "WITH", "WITH"], statements
    order.refresh_from_db()
    assert order.data == {} and order.steps_in_run == 3
    assert list(order.log.order_by("id").values_list("step", "outcome")) == [
        ("a", "succeeded"),
        ("b", "succeeded"),
        ("c", "succeeded"),
    ]
