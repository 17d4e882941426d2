"""Map steps through the real engine (`run_batch`) against a local API: one call per item,
in item order, with per-item keys, concurrency, tolerated failures and reprocessing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hosts.models import Host
from hosts.services import host_pause, host_resume
from orders.models import Order
from orders.services import order_cancel, order_reprocess
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

LINES = [{"sku": "TEE", "qty": 1}, {"sku": "CAP", "qty": 2}, {"sku": "MUG", "qty": 3}]


def reserve_calls(server) -> list[dict]:
    return [
        api_call(
            "stock.reserve",
            server.url + "/reserve",
            body={
                "sku": "{{ params.sku }}",
                "qty": "{{ params.qty }}",
                "line": "{{ params.line }}",
            },
        ),
        api_call("ops.ticket", server.url + "/ticket", body={"failed": "{{ params.failed }}"}),
    ]


def map_step(**spec) -> dict:
    inner = {
        "items": "{{ input.lines }}",
        "as": "line",
        "call": "stock.reserve",
        "params": {"sku": "{{ line.sku }}", "qty": "{{ line.qty }}", "line": "{{ index }}"},
        "save": {"reservation": "{{ response.body.id }}"},
        **spec,
    }
    return {
        "id": "reserve",
        "map": inner,
        "save": {"reservations": "{{ results | map(attribute='reservation') | list }}"},
    }


def reservation(request) -> Reply:
    return Reply(201, {"id": f"r-{request.body['sku']}"})


def test_a_map_calls_once_per_item_and_saves_the_results_in_item_order(server):
    server.route("POST", "/reserve", reservation)
    order = process(make_order([map_step()], reserve_calls(server), payload={"lines": LINES}))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"reservations": ["r-TEE", "r-CAP", "r-MUG"]}
    bodies = [request.body for request in server.requests_to("/reserve")]
    assert bodies == [
        {"sku": "TEE", "qty": 1, "line": 0},
        {"sku": "CAP", "qty": 2, "line": 1},
        {"sku": "MUG", "qty": 3, "line": 2},
    ]
    keys = [request.headers["Idempotency-Key"] for request in server.requests_to("/reserve")]
    assert len(set(keys)) == 3
    logged = [(entry.step, entry.attempt, entry.outcome) for entry in attempts(order)]
    assert logged == [
        ("reserve[0]", 1, "succeeded"),
        ("reserve[1]", 1, "succeeded"),
        ("reserve[2]", 1, "succeeded"),
    ]


def test_an_empty_list_succeeds_at_once(server):
    order = process(make_order([map_step()], reserve_calls(server), payload={"lines": []}))

    assert order.status == Order.Status.COMPLETED
    assert order.data == {"reservations": []}
    assert server.received == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"lines": {"sku": "TEE"}}, "map.items: {{ input.lines }} gave an object, not a list"),
        ({"lines": 3}, "map.items: {{ input.lines }} gave int, not a list"),
        ({}, "map.items:"),
    ],
)
def test_items_that_are_not_a_list_fail_the_step_saying_why(server, payload, reason):
    order = process(make_order([map_step()], reserve_calls(server), payload=payload))

    assert order.status == Order.Status.FAILED
    assert order.failed_step == "reserve"
    assert order.error.startswith(f'step "reserve": {reason}')
    assert server.received == []


def test_more_items_than_the_limit_fail_the_step(server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, max_map_items=2)
    order = process(make_order([map_step()], reserve_calls(server), payload={"lines": LINES}))

    assert order.status == Order.Status.FAILED
    assert "3 items, more than 2 (STATE_MANAGER_MAX_MAP_ITEMS)" in order.error
    assert server.received == []


def test_at_most_max_concurrency_items_are_in_flight(server):
    def slow(request):
        time.sleep(0.2)
        return reservation(request)

    server.route("POST", "/reserve", slow)
    lines = [{"sku": f"S{i}", "qty": 1} for i in range(9)]
    steps = [map_step(max_concurrency=3)]
    started = time.monotonic()
    order = process(make_order(steps, reserve_calls(server), payload={"lines": lines}))

    assert order.status == Order.Status.COMPLETED, order.error
    assert server.max_in_flight == 3
    assert time.monotonic() - started < 1.5  # three rounds of 0.2 s, not nine
    assert order.data == {"reservations": [f"r-S{i}" for i in range(9)]}


def test_a_map_holds_no_thread_per_item(server):
    server.route("POST", "/reserve", reservation)
    lines = [{"sku": f"S{i}", "qty": 1} for i in range(60)]
    seen: list[int] = []
    server.route(
        "POST",
        "/reserve",
        lambda request: (seen.append(threading.active_count()), reservation(request))[1],
    )
    order = process(
        make_order([map_step(max_concurrency=4)], reserve_calls(server), payload={"lines": lines})
    )

    assert order.status == Order.Status.COMPLETED
    # The server's own handler threads come and go; the engine adds at most four.
    assert max(seen) < 30


def test_each_item_is_retried_with_its_own_key(server):
    answers: Counter = Counter()

    def first_fails(request):
        answers[request.body["sku"]] += 1
        if request.body["sku"] == "CAP" and answers["CAP"] == 1:
            return Reply(503)
        return reservation(request)

    server.route("POST", "/reserve", first_fails)
    steps = [map_step(retry={"max_attempts": 2, "backoff_seconds": 0})]
    order = process(make_order(steps, reserve_calls(server), payload={"lines": LINES}))

    assert order.status == Order.Status.COMPLETED, order.error
    cap = [
        r.headers["Idempotency-Key"]
        for r in server.requests_to("/reserve")
        if r.body["sku"] == "CAP"
    ]
    assert len(cap) == 2 and cap[0] == cap[1]
    logged = [(e.step, e.attempt, e.outcome) for e in attempts(order) if e.step == "reserve[1]"]
    assert logged == [("reserve[1]", 1, "retrying"), ("reserve[1]", 2, "succeeded")]


def failing(*skus: str):
    def handler(request):
        if request.body["sku"] in skus:
            return Reply(500, {"error": "out of stock"})
        return reservation(request)

    return handler


def test_tolerated_failures_leave_a_gap_in_the_results(server):
    server.route("POST", "/reserve", failing("CAP"))
    steps = [{**map_step(tolerated_failures=1), "save": {"reserved": "{{ results }}"}}]
    order = process(make_order(steps, reserve_calls(server), payload={"lines": LINES}))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"reserved": [{"reservation": "r-TEE"}, None, {"reservation": "r-MUG"}]}
    note = order.log.filter(kind="step", step="reserve").first().response["note"]
    assert note == "3 items: 2 succeeded, 1 failed (tolerated)"


def test_more_failures_than_tolerated_start_no_further_item_and_fail_with_the_items(server):
    server.route("POST", "/reserve", failing("TEE", "CAP"))
    server.route("POST", "/ticket", Reply(200))
    lines = [*LINES, {"sku": "BAG", "qty": 1}]
    steps = [
        {**map_step(tolerated_failures=1), "on_failed": "ticket"},
        {"id": "done", "end": "completed"},
        {
            "id": "ticket",
            "call": "ops.ticket",
            "params": {"failed": "{{ error.items | map(attribute='index') | list }}"},
            "end": "failed",
        },
    ]
    order = process(make_order(steps, reserve_calls(server), payload={"lines": lines}))

    assert order.status == Order.Status.FAILED
    sent = [request.body["sku"] for request in server.requests_to("/reserve")]
    assert sent == ["TEE", "CAP"]  # the second failure is one too many: MUG and BAG wait
    assert server.requests_to("/ticket")[0].body == {"failed": [0, 1]}
    assert order.failed_step == "reserve"
    assert order.failed_http_status == 500


def test_a_reprocess_from_the_failed_step_sends_only_the_items_that_did_not_succeed(server):
    server.route("POST", "/reserve", failing("CAP"))
    steps = [map_step(max_concurrency=2)]
    order = process(make_order(steps, reserve_calls(server), payload={"lines": LINES}))
    assert order.status == Order.Status.FAILED
    assert "1 of 3 items failed (0 tolerated): [1] HTTP 500" in order.error
    first_keys = {
        r.body["sku"]: r.headers["Idempotency-Key"] for r in server.requests_to("/reserve")
    }

    server.route("POST", "/reserve", reservation)
    order_reprocess(order=order, start_from="failed", actor="support")
    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"reservations": ["r-TEE", "r-CAP", "r-MUG"]}
    again = server.requests_to("/reserve")[len(first_keys) :]
    # TEE succeeded and keeps its result; CAP failed, and MUG had not started (or had).
    expected = ["CAP", "MUG"] if "MUG" not in first_keys else ["CAP"]
    assert sorted(request.body["sku"] for request in again) == expected
    assert "TEE" not in [request.body["sku"] for request in again]
    cap = next(request for request in again if request.body["sku"] == "CAP")
    assert cap.headers["Idempotency-Key"] != first_keys["CAP"]  # a new run, a new key


def test_a_retry_due_later_keeps_the_items_done(server, settings):
    answers: Counter = Counter()

    def later(request):
        answers[request.body["sku"]] += 1
        if request.body["sku"] == "MUG" and answers["MUG"] == 1:
            return Reply(503, headers={"Retry-After": "30"})
        return reservation(request)

    server.route("POST", "/reserve", later)
    steps = [map_step(retry={"max_attempts": 2})]
    order = process(make_order(steps, reserve_calls(server), payload={"lines": LINES}))

    assert order.status == Order.Status.WAITING
    assert order.step_state["items"]["2"]["status"] == "retrying"
    Order.objects.filter(pk=order.pk).update(due_at=order.created_at)
    order.step_state["items"]["2"]["due"] = 0
    Order.objects.filter(pk=order.pk).update(step_state=order.step_state)
    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
    assert answers == {"TEE": 1, "CAP": 1, "MUG": 2}
    mug = [(e.step, e.attempt, e.outcome) for e in attempts(order) if e.step == "reserve[2]"]
    assert mug == [("reserve[2]", 1, "retrying"), ("reserve[2]", 2, "succeeded")]


def test_a_map_over_a_child_blueprint_fails_saying_child_orders_cannot_run(server):
    step = {"id": "fulfil", "map": {"items": "{{ input.lines }}", "blueprint": "ship", "input": {}}}
    order = process(make_order([step], payload={"lines": LINES}))

    assert order.status == Order.Status.FAILED
    assert "items of a child blueprint cannot run" in order.error
    assert server.received == []


def test_an_item_costs_one_write_of_the_order(server):
    server.route("POST", "/reserve", reservation)
    lines = [{"sku": f"S{i}", "qty": 1} for i in range(20)]
    order = make_order([map_step()], reserve_calls(server), payload={"lines": lines})
    with CaptureQueriesContext(connection) as captured:
        order = process(order)

    assert order.status == Order.Status.COMPLETED
    writes = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("UPDATE") and "orders_order" in q["sql"]
    ]
    # Each item's attempt row is written with the items finished before it; then the end.
    assert len(writes) <= len(lines) + 4, len(writes)


def test_a_cancel_during_a_map_lets_the_item_in_flight_finish_and_starts_no_other(server):
    arrived = threading.Event()

    def slow(request):
        arrived.set()
        time.sleep(0.3)
        return reservation(request)

    server.route("POST", "/reserve", slow)
    order = make_order([map_step()], reserve_calls(server), payload={"lines": LINES})
    runner = threading.Thread(target=process, args=(order,))
    runner.start()
    assert arrived.wait(10)
    order_cancel(order=Order.objects.get(pk=order.pk), actor="support")
    runner.join(20)

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert [request.body["sku"] for request in server.requests_to("/reserve")] == ["TEE"]
    assert [(e.step, e.outcome) for e in attempts(order)] == [("reserve[0]", "succeeded")]


def test_a_paused_host_holds_the_map_sending_nothing_until_it_is_resumed(server):
    server.route("POST", "/reserve", reservation)
    host = host_pause(host=Host.objects.create(host="127.0.0.1"), actor="ops")
    order = process(make_order([map_step()], reserve_calls(server), payload={"lines": LINES}))

    assert order.status == Order.Status.WAITING
    assert server.received == []
    assert order.log.filter(outcome="waiting", step="reserve[0]").exists()

    host_resume(host=host, actor="ops")
    order = process(order)
    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"reservations": ["r-TEE", "r-CAP", "r-MUG"]}


def test_a_batch_runs_at_most_its_concurrency_of_items_across_its_maps(server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, concurrency=3)

    def slow(request):
        time.sleep(0.1)
        return reservation(request)

    server.route("POST", "/reserve", slow)
    lines = [{"sku": f"S{i}", "qty": 1} for i in range(6)]
    orders = [
        make_order([map_step(max_concurrency=4)], reserve_calls(server), payload={"lines": lines})
        for _ in range(3)
    ]
    process(orders[0])

    assert server.max_in_flight == 3  # three orders' maps of four, three items at once
    for order in orders:
        order.refresh_from_db()
        assert order.status == Order.Status.COMPLETED, order.error


def test_a_reprocess_from_the_map_step_by_name_runs_every_item_again(server):
    server.route("POST", "/reserve", reservation)
    steps = [{"id": "first", "call": "ops.ticket", "params": {"failed": "no"}}, map_step()]
    server.route("POST", "/ticket", Reply(200))
    order = process(make_order(steps, reserve_calls(server), payload={"lines": LINES}))
    assert order.status == Order.Status.COMPLETED, order.error

    order_reprocess(order=order, start_from="reserve", actor="support")
    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
    assert len(server.requests_to("/ticket")) == 1
    assert len(server.requests_to("/reserve")) == 6
