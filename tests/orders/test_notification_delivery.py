"""How status notifications are delivered (contract section 9): once per event after a
2xx and each order's events in order, however many deliverers run at once; every post
within its deadline, and one slow or dead receiver delaying no other receiver."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import replace

import pytest
from django.db import connections
from django.utils import timezone

from orders import notifications
from orders.alerts import AlertNotSent, send_test_alert
from orders.models import AlertRule, Order, OrderEvent
from orders.notifications import (
    Delivery,
    claim,
    deliver_due_events,
    finish,
    has_due_events,
    post_json,
)
from tests.localserver import LocalServer, Reply
from tests.orders.test_batch import ROOT, worker_env
from tests.orders.test_notifications import SECRET, notifying_order
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)

# Short deadlines, so that a test waits seconds for what takes ten in production.
DEADLINE = 1.5


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, notify_secret=SECRET)


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(notifications, "POST_DEADLINE_SECONDS", DEADLINE, raising=False)


class SilentServer:
    """A receiver on 127.0.0.1 that reads the request and then never answers (`drip=0`),
    or sends its answer one byte every `drip` seconds, never finishing it."""

    def __init__(self, drip: float = 0.0) -> None:
        self.drip = drip
        self.stopped = threading.Event()
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.requests += 1
            answer = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"x" * 100000
            for byte in answer:
                if self.stopped.wait(self.drip or 3600):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def receiver_url(server):
    """A receiver answering 200 at once."""
    local = LocalServer()
    local.fallback = lambda _request: Reply(200, {})
    yield local
    local.stop()


@pytest.fixture
def hanging():
    local = SilentServer()
    yield local
    local.stop()


@pytest.fixture
def dripping():
    local = SilentServer(drip=1.0)
    yield local
    local.stop()


def orders_notifying(server, receiver, count: int, prefix: str) -> list[Order]:
    return [notifying_order(server, receiver, order_id=f"{prefix}-{n}") for n in range(count)]


def record_events(order: Order, count: int, *, at=None) -> list[OrderEvent]:
    """`count` status changes of `order`, due at `at` (default now), oldest first."""
    at = at or timezone.now()
    return [
        OrderEvent.objects.create(
            order=order,
            event_id=uuid.uuid4(),
            status=f"s{n + 1}",
            previous_status=f"s{n}",
            occurred_at=at,
            next_attempt_at=at,
        )
        for n in range(count)
    ]


def slow(seconds: float):
    def handler(_request):
        time.sleep(seconds)
        return Reply(200, {})

    return handler


def start_deliverer_process(seconds: float) -> subprocess.Popen:
    """Another worker process on the test database, delivering what is due for `seconds`."""
    code = (
        "import time\n"
        "from orders.notifications import deliver_due_events\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n"
        "    deliver_due_events()\n"
        "    time.sleep(0.05)\n"
    )
    env = worker_env(STATE_MANAGER_NOTIFY_SECRET=SECRET)
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def deliver_in_threads(threads: int, seconds: float) -> None:
    """`threads` deliverers calling `deliver_due_events` over and over for `seconds`."""
    end = time.monotonic() + seconds
    errors = []

    def loop() -> None:
        try:
            while time.monotonic() < end:
                deliver_due_events()
                time.sleep(0.02)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []


def test_concurrent_deliverers_post_each_event_once_and_each_order_in_order(
    server, monkeypatch, short_deadline
):
    """A round far longer than a lease (scaled down: 1.5 s deadline, 2 s lease, a receiver
    answering in 0.25 s, 40 events): every event is posted once, each order's in order."""
    monkeypatch.setattr(notifications, "LEASE_SECONDS", 2)
    receiver = LocalServer()
    receiver.fallback = slow(0.25)
    try:
        orders = orders_notifying(server, receiver, 8, "D")
        for order in orders:
            record_events(order, 5)
        other = start_deliverer_process(14)
        deliver_in_threads(4, 12)
        other.wait(timeout=30)
        assert other.returncode == 0, other.stderr.read().decode()[-2000:]
    finally:
        receiver.stop()

    posted = [request.headers["X-StateManager-Event-Id"] for request in receiver.received]
    twice = {event_id: n for event_id, n in Counter(posted).items() if n > 1}
    assert twice == {}
    assert set(OrderEvent.objects.values_list("state", flat=True)) == {"delivered"}
    by_order = defaultdict(list)
    for request in receiver.received:
        by_order[request.body["order_id"]].append(request.body["status"])
    assert dict(by_order) == {order.order_id: ["s1", "s2", "s3", "s4", "s5"] for order in orders}


def test_a_dead_or_dripping_receiver_delays_no_other_receivers_notifications(
    server, hanging, dripping, short_deadline
):
    earlier = timezone.now() - timezone.timedelta(minutes=1)
    for number, silent in enumerate([hanging, dripping, hanging, dripping]):
        record_events(notifying_order(server, silent, order_id=f"S-{number}"), 2, at=earlier)
    answering = LocalServer()
    answering.fallback = lambda _request: Reply(200, {})
    try:
        for order in orders_notifying(server, answering, 6, "A"):
            record_events(order, 1)
        started = time.monotonic()
        done = threading.Event()

        def deliver() -> None:
            try:
                deliver_due_events()
            finally:
                connections.close_all()
                done.set()

        threading.Thread(target=deliver, daemon=True).start()
        while len(answering.received) < 6 and time.monotonic() - started < 5:
            time.sleep(0.01)
        answered_after = time.monotonic() - started
        assert done.wait(4 * DEADLINE + 2)
        took = time.monotonic() - started
    finally:
        answering.stop()

    assert len(answering.received) == 6
    assert answered_after < 1.0
    assert took < 2 * DEADLINE + 1.5
    assert hanging.requests >= 1 and dripping.requests >= 1
    silent = OrderEvent.objects.filter(order__order_id__startswith="S-", attempts__gt=0)
    assert {(event.state, event.last_status) for event in silent} == {("pending", None)}
    assert all("within 1.5s" in event.last_error for event in silent)


def test_posts_to_one_receiver_are_at_most_two_at_once_and_to_others_concurrent(
    server, short_deadline
):
    receivers = [LocalServer() for _ in range(3)]
    for receiver in receivers:
        receiver.fallback = slow(0.3)
    try:
        for number, receiver in enumerate(receivers):
            for order in orders_notifying(server, receiver, 6, f"R{number}"):
                record_events(order, 1)
        started = time.monotonic()
        assert deliver_due_events() == 18
        took = time.monotonic() - started
    finally:
        for receiver in receivers:
            receiver.stop()

    assert [receiver.max_in_flight for receiver in receivers] == [2, 2, 2]
    assert took < 6 * 0.3  # 18 posts of 0.3 s, three receivers two at a time: about 0.9 s


def in_thread(call, timeout: float) -> list:
    """`call()`'s result (or the exception it raised) in a list, empty when it had not
    returned after `timeout` seconds (it goes on in the background)."""
    outcome = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome


@pytest.mark.parametrize("silent", ["hanging", "dripping"])
def test_a_post_gets_no_longer_than_its_deadline(silent, request, short_deadline):
    url = request.getfixturevalue(silent).url
    started = time.monotonic()

    outcome = in_thread(lambda: post_json(url, b"{}", headers={}, allow=["127.0.0.1"]), 15)

    assert time.monotonic() - started < DEADLINE + 0.5
    (result,) = outcome
    assert not result.ok and result.status is None and not result.refused
    assert "within 1.5s" in result.error


def test_a_webhook_alert_that_gets_no_answer_fails_at_the_deadline(dripping, short_deadline):
    alerting = AlertRule.objects.create(
        name="stuck webhook",
        threshold=1,
        window_minutes=15,
        channel=AlertRule.Channel.WEBHOOK,
        webhook_url=f"{dripping.url}/hooks/T0K3N",
    )
    started = time.monotonic()

    outcome = in_thread(lambda: send_test_alert(alerting), DEADLINE + 3)

    assert time.monotonic() - started < DEADLINE + 0.5
    (raised,) = outcome
    assert isinstance(raised, AlertNotSent)
    assert "within 1.5s" in str(raised) and "T0K3N" not in str(raised)


def test_a_claim_that_ran_out_is_taken_over_and_its_outcome_not_written(server, receiver_url):
    (event,) = record_events(notifying_order(server, receiver_url, order_id="L-1"), 1)
    first = claim(event, None)
    assert first is not None and claim(event, None) is None  # leased: nobody else takes it

    later = timezone.now() + timezone.timedelta(seconds=notifications.LEASE_SECONDS + 1)
    second = claim(event, later)

    assert second is not None
    assert not finish(event, first, Delivery(status=200))
    event.refresh_from_db()
    assert (event.state, event.attempts, event.claim) == ("pending", 0, second)
    assert finish(event, second, Delivery(status=200))
    event.refresh_from_db()
    assert (event.state, event.attempts, event.claim) == ("delivered", 1, None)


def test_a_call_from_a_lane_returns_when_told_and_leaves_a_dead_receiver_to_the_pool(
    server, hanging, short_deadline
):
    (stuck,) = record_events(notifying_order(server, hanging, order_id="W-1"), 1)
    answering = LocalServer()
    answering.fallback = lambda _request: Reply(200, {})
    try:
        record_events(notifying_order(server, answering, order_id="W-2"), 2)
        started = time.monotonic()

        assert deliver_due_events(wait_seconds=0.5) == 2

        assert time.monotonic() - started < 1.0
        assert len(answering.received) == 2
        assert not has_due_events(timezone.now())  # the stuck one is claimed meanwhile
        deadline = time.monotonic() + DEADLINE + 2
        while OrderEvent.objects.get(pk=stuck.pk).attempts == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        answering.stop()
    stuck.refresh_from_db()
    assert (stuck.state, stuck.claim) == ("pending", None)
    assert "no answer within 1.5s" in stuck.last_error
