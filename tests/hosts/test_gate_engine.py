"""The host gate as orders meet it: a host's rate, concurrency, pause and circuit breaker
hold orders (waiting, nothing failed, no attempt counted, the log saying why) and let
them go again, against a real local partner, with the limits in Redis when REDIS_URL is
set and in the database otherwise."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host
from orders.batch import run_batch
from orders.models import Order, StepLog
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "127.0.0.1"


class Partner:
    """The local server's one route, answering `status` after `latency` seconds and
    noting when each request arrived."""

    def __init__(self, server, *, latency: float = 0.0, status: int = 200):
        self.server, self.latency, self.status = server, latency, status
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        server.route("POST", "/call", self.answer)

    def answer(self, request) -> Reply:
        with self.lock:
            self.arrivals.append(time.monotonic())
        time.sleep(self.latency)
        return Reply(self.status, {"ok": self.status < 400})

    def most_in_any_second(self) -> int:
        times = sorted(self.arrivals)
        return max(
            (sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)),
            default=0,
        )


def orders_for(server, count: int, **call) -> list[Order]:
    steps = [{"id": "call", "call": "call"}]
    calls = [api_call("call", f"{server.url}/call", **call)]
    return [make_order(steps, calls, order_id=f"o-{n}") for n in range(count)]


def run_until_settled(timeout: float = 30.0) -> None:
    """Batches until no order is left pending or waiting (held orders come back when due)."""
    deadline = time.monotonic() + timeout
    while Order.objects.filter(status__in=["pending", "waiting"]).exists():
        assert time.monotonic() < deadline, "orders still held after the timeout"
        run_batch(batch_size=100, concurrency=20)
        time.sleep(0.05)


def make_due(*orders: Order) -> None:
    pks = [order.pk for order in orders] or Order.objects.values_list("pk", flat=True)
    Order.objects.filter(pk__in=pks).update(due_at=timezone.now() - timedelta(seconds=1))


def holds(order: Order) -> list[StepLog]:
    return list(order.log.filter(kind="step", outcome="waiting").order_by("id"))


@pytest.fixture
def host_settings(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, host_max_wait_seconds=0.3)
    return settings


def test_orders_reach_a_host_at_its_rate_and_the_rest_wait_without_an_attempt(
    server, host_settings
):
    Host.objects.create(host=HOST, rate_per_second=10)
    partner = Partner(server)
    orders = orders_for(server, 15)

    run_batch(batch_size=100, concurrency=15)
    held = Order.objects.filter(status="waiting")
    assert held.exists(), "15 calls at 10/s with 0.3 s of waiting: some must be held"
    waiting = held.first()
    assert waiting.attempt == 0 and attempts(waiting) == []
    (note,) = holds(waiting)
    assert "host 127.0.0.1 is at its rate of 10 requests per second" in note.response["note"]

    run_until_settled()

    assert len(partner.arrivals) == 15
    # Slots leave 0.1 s apart; one call arriving a little late beside a punctual one may
    # put an eleventh in one second at the partner, never a burst.
    assert partner.most_in_any_second() <= 11
    assert max(partner.arrivals) - min(partner.arrivals) >= 14 * 0.1 * 0.9  # 14 slots apart
    for order in orders:
        order.refresh_from_db()
        assert order.status == "completed"
        assert [(a.attempt, a.outcome) for a in attempts(order)] == [(1, "succeeded")]


def test_no_more_calls_are_in_flight_at_a_host_than_its_max_concurrent(server, host_settings):
    Host.objects.create(host=HOST, max_concurrent=2)
    Partner(server, latency=0.4)
    orders_for(server, 6)

    run_batch(batch_size=100, concurrency=6)
    held = Order.objects.filter(status="waiting").first()
    assert held is not None
    assert "already has 2 calls in flight" in holds(held)[0].response["note"]

    run_until_settled()

    assert server.max_in_flight == 2
    assert Order.objects.filter(status="completed").count() == 6


def test_a_paused_host_holds_its_orders_logging_once_until_it_is_resumed(server, host_settings):
    host = Host.objects.create(host=HOST, paused_at=timezone.now(), paused_by="ops")
    partner = Partner(server)
    (order,) = orders_for(server, 1)

    run_batch()
    make_due(order)
    run_batch()

    order.refresh_from_db()
    assert order.status == "waiting" and order.attempt == 0 and order.error == ""
    assert order.current_step == "call"
    assert partner.arrivals == []
    (note,) = holds(order)
    assert note.response["note"].startswith("waits: host 127.0.0.1 is paused; looks again in")
    assert order.step_state["held"]["count"] == 2
    assert 0 < (order.due_at - timezone.now()).total_seconds() <= 120  # stretched, jittered

    host.paused_at = None
    host.save()
    make_due(order)
    run_batch()

    order.refresh_from_db()
    assert order.status == "completed"
    assert "held" not in order.step_state
    assert len(partner.arrivals) == 1


@pytest.fixture
def breaker_settings(settings):
    settings.STATE_MANAGER = replace(
        settings.STATE_MANAGER,
        breaker_min_calls=4,
        breaker_failure_rate=0.5,
        breaker_window_seconds=60,
        breaker_cooldown_seconds=1.0,
        breaker_probes=2,
    )
    return settings


def breaker() -> Host:
    return Host.objects.get(host=HOST)


def test_the_breaker_opens_on_a_failing_partner_holds_orders_and_closes_when_it_is_back(
    server, breaker_settings
):
    partner = Partner(server, status=503)
    failing = orders_for(server, 4)
    run_batch()
    assert {order.status for order in Order.objects.filter(pk__in=[o.pk for o in failing])} == {
        "failed"
    }
    assert breaker().breaker_state == "open"
    assert breaker().breaker_failure_rate == 1.0

    steps = [{"id": "call", "call": "call"}]
    calls = [api_call("call", f"{server.url}/call")]
    later = [make_order(steps, calls, order_id=f"later-{n}") for n in range(3)]
    run_batch()
    for order in later:
        order.refresh_from_db()
        assert order.status == "waiting" and order.attempt == 0
        assert "circuit breaker of 127.0.0.1 is open" in holds(order)[0].response["note"]
    assert len(partner.arrivals) == 4  # nothing sent while open

    partner.status = 200  # the partner comes back
    time.sleep(1.1)  # the cool-down
    make_due(*later)
    run_batch(batch_size=100, concurrency=1)  # one after another: two probes, then closed

    assert breaker().breaker_state == "closed"
    run_until_settled()
    for order in later:
        order.refresh_from_db()
        assert order.status == "completed"
        assert [a.outcome for a in attempts(order)] == ["succeeded"]


def test_a_failed_probe_opens_the_breaker_again(server, breaker_settings):
    Partner(server, status=503)
    orders_for(server, 4)
    run_batch()
    opened_at = breaker().breaker_since

    time.sleep(1.1)
    steps = [{"id": "call", "call": "call"}]
    probe = make_order(steps, [api_call("call", f"{server.url}/call")], order_id="probe")
    run_batch()

    probe.refresh_from_db()
    assert probe.status == "failed"  # a probe is a real attempt
    assert breaker().breaker_state == "open" and breaker().breaker_since > opened_at


def test_4xx_answers_do_not_open_the_breaker(server, breaker_settings):
    Partner(server, status=422)
    orders_for(server, 6)
    run_batch()
    assert not Host.objects.filter(host=HOST).exclude(breaker_state="closed").exists()


def test_an_order_is_held_when_the_limits_cannot_be_checked(server, host_settings):
    host_settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    Host.objects.create(host=HOST, rate_per_second=100)
    partner = Partner(server)
    (order,) = orders_for(server, 1)

    run_batch()

    order.refresh_from_db()
    assert order.status == "waiting" and partner.arrivals == []
    assert "the limits of host 127.0.0.1 could not be checked" in holds(order)[0].response["note"]


@pytest.mark.skipif("not __import__('django.conf').conf.settings.REDIS_URL")
def test_a_high_rate_is_held_to_the_microsecond_in_redis():
    """Redis keeps the clock as text: rounded to a tenth of a millisecond, 7,000 requests
    a second would go out at 10,000."""
    from hosts.limits import limits

    rate, count = 7000, 200
    slots = []
    for _ in range(count):
        asked = time.monotonic()
        slots.append(asked + limits().reserve("fast.partner.example", rate, max_wait=1.0).wait)

    assert slots[-1] - slots[0] >= (count - 1) / rate * 0.99


@pytest.mark.skipif("not __import__('django.conf').conf.settings.REDIS_URL")
def test_a_short_lease_does_not_cut_a_long_one_short_in_redis():
    from hosts.limits import limits

    store = limits()
    assert store.acquire("slow.partner.example", 5, ttl=600)
    assert store.acquire("slow.partner.example", 5, ttl=5)

    assert store.client.ttl(f"{store._keys('slow.partner.example')[2]}") > 600


def test_a_probe_that_is_held_gives_its_place_back(server, breaker_settings):
    from hosts.limits import limits

    Partner(server)
    host = Host.objects.create(host=HOST, max_concurrent=1)
    Host.objects.filter(pk=host.pk).update(
        breaker_state="open", breaker_since=timezone.now() - timedelta(seconds=5)
    )
    stale = limits().acquire(HOST, 1, ttl=60)  # a call in flight holds the only lease
    (order,) = orders_for(server, 1)
    breaker_settings.STATE_MANAGER = replace(
        breaker_settings.STATE_MANAGER, host_max_wait_seconds=0.1
    )

    run_batch()

    order.refresh_from_db()
    assert order.status == "waiting" and "calls in flight" in holds(order)[0].response["note"]
    assert (breaker().breaker_state, breaker().breaker_probes) == ("half_open", 0)
    limits().release(HOST, stale)
    make_due(order)
    run_batch()

    order.refresh_from_db()
    assert order.status == "completed"


def test_a_hold_at_the_next_step_keeps_what_the_step_before_did(server, host_settings):
    """The step before's outcome waits to be written with the next call's attempt; a hold
    there writes it, so resuming does not send the step before again."""
    Host.objects.create(host=HOST, paused_at=timezone.now(), paused_by="ops")
    server.route("POST", "/quote", Reply(200, {"total": 12}))
    partner = Partner(server)
    steps = [
        {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
        {"id": "call", "call": "call"},
    ]
    local = server.url.replace("127.0.0.1", "localhost")  # another host name, not paused
    calls = [api_call("quote", f"{local}/quote"), api_call("call", f"{server.url}/call")]
    order = make_order(steps, calls)

    run_batch()

    order.refresh_from_db()
    assert (order.status, order.current_step, order.data) == ("waiting", "call", {"total": 12})
    assert [(a.step, a.outcome) for a in attempts(order)] == [("quote", "succeeded")]

    Host.objects.get(host=HOST).delete()
    make_due(order)
    run_batch()

    order.refresh_from_db()
    assert order.status == "completed"
    assert len(server.requests_to("/quote")) == 1 and len(partner.arrivals) == 1
