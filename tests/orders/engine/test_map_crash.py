"""A worker SIGKILLed in the middle of a map: the order is taken up after its lease, every
item is sent once per run with its own key, and only the items in flight are repeated."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from orders.models import Order
from tests.localserver import Reply
from tests.orders.test_batch import start_worker, stop, wait_until
from tests.orders.workflows import api_call, make_order

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_killed_worker_mid_map_repeats_only_the_items_in_flight(server):
    def slow(request):
        time.sleep(0.3)
        return Reply(201, {"id": f"r-{request.body['line']}"})

    server.route("POST", "/reserve", slow)
    calls = [api_call("stock.reserve", server.url + "/reserve", body={"line": "{{ index }}"})]
    step = {
        "id": "reserve",
        "map": {
            "items": "{{ input.lines }}",
            "max_concurrency": 2,
            "call": "stock.reserve",
            "save": {"id": "{{ response.body.id }}"},
        },
        "save": {"ids": "{{ results | map(attribute='id') | list }}"},
    }
    order = make_order([step], calls, payload={"lines": list(range(12))})

    doomed = start_worker(STATE_MANAGER_LEASE_SECONDS=2, STATE_MANAGER_INTERVAL_SECONDS=0)
    try:
        assert wait_until(lambda: len(server.requests_to("/reserve")) >= 6, 30)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        stop(doomed)
    survivor = start_worker(STATE_MANAGER_LEASE_SECONDS=2, STATE_MANAGER_INTERVAL_SECONDS=0)
    try:
        done = wait_until(lambda: Order.objects.get(pk=order.pk).status == "completed", 60)
    finally:
        stop(survivor)

    order.refresh_from_db()
    assert done, (order.status, order.error)
    assert order.data == {"ids": [f"r-{line}" for line in range(12)]}
    received = server.requests_to("/reserve")
    keys_by_line: dict[int, set] = {}
    for request in received:
        keys_by_line.setdefault(request.body["line"], set()).add(request.headers["Idempotency-Key"])
    assert sorted(keys_by_line) == list(range(12))
    assert all(len(keys) == 1 for keys in keys_by_line.values())  # one key per item, kept
    assert len({key for keys in keys_by_line.values() for key in keys}) == 12
    sent = Counter(request.body["line"] for request in received)
    repeated = sorted(line for line, count in sent.items() if count > 1)
    assert len(repeated) <= 2 and max(sent.values()) <= 2  # at most the two in flight
    interrupted = sorted(
        int(step[len("reserve[") : -1])
        for step in order.log.filter(outcome="interrupted").values_list("step", flat=True)
    )
    assert 1 <= len(interrupted) <= 2  # killed with items in flight
    assert set(repeated) <= set(interrupted)  # an interrupted one may not have been sent yet
    for line in repeated:
        outcomes = order.log.filter(step=f"reserve[{line}]").values_list("outcome", flat=True)
        assert list(outcomes) == ["interrupted", "succeeded"]
