"""Batches: caps, claims across processes, leases after a crash, the schedule."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.signing import SignedPackage

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders import lanes
from orders.batch import run_batch
from orders.claims import claim_due_orders
from orders.engine import journal
from orders.engine.runner import advance_order
from orders.lanes import LaneTurn, dispatch_lanes
from orders.models import BatchLane, Order
from orders.services import order_create
from orders.tasks import SCHEDULE_FUNC, ensure_schedule, run_lane
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def slow_reply(seconds: float, body=None):
    def handler(_request):
        time.sleep(seconds)
        return Reply(200, body or {})

    return handler


def two_step_orders(server, count: int, *, prefix: str = "o") -> list[Order]:
    calls = [api_call("a", server.url + "/a"), api_call("b", server.url + "/b")]
    steps = [{"id": "a", "call": "a"}, {"id": "b", "call": "b"}]
    return [make_order(steps, calls, order_id=f"{prefix}-{i}") for i in range(count)]


def test_a_batch_claims_at_most_the_batch_size(server):
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 7)

    report = run_batch(batch_size=5, concurrency=2)

    assert report.claimed == 5
    assert Order.objects.filter(status="completed").count() == 5
    assert Order.objects.filter(status="pending").count() == 2


def test_a_batch_runs_at_most_concurrency_orders_at_once(server):
    server.route("POST", "/a", slow_reply(0.1))
    server.route("POST", "/b", slow_reply(0.1))
    two_step_orders(server, 12)

    run_batch(batch_size=12, concurrency=3)

    assert Order.objects.filter(status="completed").count() == 12
    assert server.max_in_flight == 3


def test_a_batch_allowed_to_top_up_drains_a_backlog_never_holding_more_than_its_size(server):
    held = []

    def counting_reply(_request):
        held.append(Order.objects.filter(status="running").count())
        return Reply(200, {})

    server.route("POST", "/a", counting_reply)
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 23)

    report = run_batch(batch_size=5, concurrency=2, top_up=lambda: True)

    assert report.claimed == 23
    assert report.statuses == Counter(completed=23)
    assert Order.objects.filter(status="completed").count() == 23
    assert len(held) == 23 and max(held) <= 5


def test_a_slow_order_does_not_idle_a_topped_up_batch(server):
    """Without the top-up a batch waits for its slow order before it claims more; with it
    the other thread drains the backlog meanwhile."""
    slow_answered, quick_finished = [], []

    def step_a(request):
        if request.body.get("order") == "slow":
            time.sleep(3.0)
            slow_answered.append(time.monotonic())
        return Reply(200, {})

    def step_b(request):
        if request.body.get("order") != "slow":
            quick_finished.append(time.monotonic())
        return Reply(200, {})

    server.route("POST", "/a", step_a)
    server.route("POST", "/b", step_b)
    body = {"order": "{{ order.order_id }}"}
    calls = [
        api_call("a", server.url + "/a", body=body),
        api_call("b", server.url + "/b", body=body),
    ]
    steps = [{"id": "a", "call": "a"}, {"id": "b", "call": "b"}]
    make_order(steps, calls, order_id="slow")
    for i in range(12):
        make_order(steps, calls, order_id=f"quick-{i}")

    report = run_batch(batch_size=4, concurrency=2, top_up=lambda: True)

    assert report.claimed == 13
    assert Order.objects.filter(status="completed").count() == 13
    assert len(quick_finished) == 12 and max(quick_finished) < slow_answered[0]


def test_a_batch_tops_up_only_while_its_driver_allows(server):
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 12)
    allowed = iter([True, False])

    report = run_batch(batch_size=4, concurrency=2, top_up=lambda: next(allowed, False))

    # One top-up, of the room left beside the order still in flight, if any.
    assert 7 <= report.claimed <= 8
    assert Order.objects.filter(status="completed").count() == report.claimed
    assert Order.objects.filter(status="pending").count() == 12 - report.claimed


def test_with_a_pause_after_every_batch_a_batch_is_one_claim(server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, batch_pause_seconds=5)
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 9)

    report = run_batch(batch_size=4, concurrency=2, top_up=lambda: True)

    assert report.claimed == 4
    assert Order.objects.filter(status="pending").count() == 5


def test_process_orders_once_on_an_empty_queue_says_so():
    out = StringIO()
    call_command("process_orders", "--once", stdout=out)
    assert out.getvalue().strip() == "No due orders."


def test_process_orders_once_reports_what_it_did(server):
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(500))
    two_step_orders(server, 2)

    out = StringIO()
    call_command("process_orders", "--once", stdout=out)
    assert "2 orders" in out.getvalue()
    assert "2 failed" in out.getvalue()


def test_the_schedule_exists_once_after_repeated_migrations():
    Schedule.objects.create(func="orders.tasks.run_scheduled_batches", name="old", minutes=1)
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    ensure_schedule()

    schedules = {schedule.func: schedule.schedule_type for schedule in Schedule.objects.all()}
    assert schedules == {
        SCHEDULE_FUNC: Schedule.MINUTES,
        "orders.tasks.purge": Schedule.DAILY,
        "orders.tasks.check_alerts": Schedule.MINUTES,
    }
    assert Schedule.objects.count() == 3


# Batch lanes.


def lanes_setting(settings, **values):
    settings.STATE_MANAGER = replace(
        settings.STATE_MANAGER, **{k.lower(): v for k, v in values.items()}
    )


@pytest.fixture(autouse=True)
def broker():
    """The project's django-q2 broker (Redis when REDIS_URL is set), emptied around a test."""
    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


def queued_turns(broker) -> list:
    """The arguments of the tasks waiting on the broker (taken off it)."""
    turns = []
    while broker.queue_size():
        for _task_id, package in broker.dequeue() or []:
            turns.append(SignedPackage.loads(package)["args"])
    return turns


def test_the_dispatch_queues_one_turn_per_lane_and_no_more(settings, broker):
    lanes_setting(settings, MAX_PARALLEL_BATCHES=3)

    assert dispatch_lanes() == [1, 2, 3]
    assert dispatch_lanes() == []
    assert sorted(queued_turns(broker)) == [(1,), (2,), (3,)]


def test_with_no_limit_and_no_cluster_reporting_a_cluster_keeps_one_worker_free_of_lanes(
    settings, broker
):
    lanes_setting(settings, MAX_PARALLEL_BATCHES=0)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}

    assert dispatch_lanes() == [1, 2, 3]


def test_a_lane_whose_worker_died_is_dispatched_again_after_its_lease(settings):
    lanes_setting(settings, MAX_PARALLEL_BATCHES=2, LEASE_SECONDS=60)
    long_ago = timezone.now() - timedelta(minutes=5)
    BatchLane.objects.create(number=1, holder="dead:1", lease_expires_at=long_ago)
    BatchLane.objects.create(
        number=2, holder="alive:1", lease_expires_at=long_ago + timedelta(hours=1)
    )

    assert dispatch_lanes() == [1]


def test_a_queued_turn_lost_with_its_worker_is_queued_again(settings):
    lanes_setting(settings, MAX_PARALLEL_BATCHES=2, LEASE_SECONDS=60)
    BatchLane.objects.create(number=1, queued_at=timezone.now() - timedelta(minutes=5))
    BatchLane.objects.create(number=2, queued_at=timezone.now())

    assert dispatch_lanes() == [1]


def test_two_workers_never_run_one_lane(server, settings):
    lanes_setting(settings, INTERVAL_SECONDS=0, MAX_PARALLEL_BATCHES=1)
    server.route("POST", "/a", slow_reply(1.0))
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 2)
    results = []

    def turn():
        try:
            results.append(LaneTurn(1, turn_seconds=0).run())
        finally:
            connection.close()

    first = threading.Thread(target=turn)
    first.start()
    time.sleep(0.3)  # the first turn is now inside its batch, waiting on the slow server
    turn()
    first.join()

    assert sorted(results) == ["lane 1: 1 batches", "lane 1: skipped, another worker holds it"]
    assert len(server.requests_to("/a")) == 2


def test_a_lane_queues_its_next_turn_when_its_turn_ends(server, settings, broker):
    lanes_setting(settings, INTERVAL_SECONDS=0, MAX_PARALLEL_BATCHES=1)

    LaneTurn(1, turn_seconds=0).run()

    lane = BatchLane.objects.get()
    assert (lane.holder, lane.lease_expires_at) == ("", None)
    assert lane.queued_at is not None and queued_turns(broker) == [(1,)]


def resting_lane(seconds: float) -> threading.Thread:
    """A turn of lane 1 on its own thread, for `seconds`."""

    def turn():
        try:
            LaneTurn(1, turn_seconds=seconds).run()
        finally:
            connection.close()

    thread = threading.Thread(target=turn)
    thread.start()
    return thread


def test_a_resting_lane_wakes_when_an_order_arrives_not_at_its_interval(server, settings):
    lanes_setting(settings, INTERVAL_SECONDS=3600, MAX_PARALLEL_BATCHES=1)
    server.route("POST", "/a", Reply(200))
    api_call_save(definition={"slug": "a", "name": "a", "method": "POST", "url": server.url + "/a"})
    blueprint_save(definition={"slug": "wake", "name": "Wake", "steps": [{"id": "a", "call": "a"}]})
    turn = resting_lane(3.0)
    time.sleep(0.5)  # the lane found nothing due: it rests, for an hour at most

    order_create(order_id="W-1", workflow="wake", payload={})
    created = time.monotonic()
    assert wait_until(lambda: server.requests_to("/a"), timeout=2.5)
    first_call = time.monotonic() - created
    turn.join()

    assert first_call < 1.5
    assert Order.objects.get(order_id="W-1").status == "completed"


def test_a_resting_lane_wakes_when_a_retry_comes_due(server, settings):
    lanes_setting(settings, INTERVAL_SECONDS=3600, MAX_PARALLEL_BATCHES=1)
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    (order,) = two_step_orders(server, 1)
    Order.objects.filter(pk=order.pk).update(
        status="waiting", due_at=timezone.now() + timedelta(seconds=1.5)
    )
    turn = resting_lane(3.0)

    assert wait_until(lambda: server.requests_to("/a"), timeout=2.8)
    turn.join()

    order.refresh_from_db()
    assert order.status == "completed"


def test_a_lane_drains_a_backlog_batch_after_batch_without_waiting_for_its_interval(
    server, settings
):
    lanes_setting(settings, INTERVAL_SECONDS=3600, MAX_PARALLEL_BATCHES=1, BATCH_SIZE=2)
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 5)

    report = LaneTurn(1, turn_seconds=1.0).run()  # 2, 2 and 1 orders, then none, ...

    assert int(report.split()[2]) >= 4

    assert Order.objects.filter(status="completed").count() == 5


def test_an_idle_lane_makes_one_claim_per_interval(settings):
    lanes_setting(settings, INTERVAL_SECONDS=0.25, MAX_PARALLEL_BATCHES=1)

    with CaptureQueriesContext(connection) as queries:
        assert LaneTurn(1, turn_seconds=1.0).run() in ("lane 1: 4 batches", "lane 1: 5 batches")

    # A claim reads expired leases, then due orders; a rest reads when the next is due.
    reads = [q for q in queries if '"orders_order"' in q["sql"]]
    assert 4 <= len(reads) / 3 <= 5
    writes = [q for q in queries if q["sql"].startswith(("INSERT", "UPDATE"))]
    assert not [q for q in writes if '"orders_batchrun"' in q["sql"]]


def test_a_lane_whose_batch_raises_backs_off_instead_of_queuing_itself_due_at_once(
    settings, broker, monkeypatch, caplog
):
    """An unexpected error (not the database's) ends the turn with its traceback logged
    once, and the lane's next batch a backoff from now, not the past `next_batch_at` that
    had the lane queued again at once: a hot loop that kept a worker busy failing."""
    lanes_setting(settings, INTERVAL_SECONDS=0, MAX_PARALLEL_BATCHES=1)

    def engine_bug(**kwargs):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(lanes, "run_batch", engine_bug)
    before = timezone.now()
    with contextlib.suppress(RuntimeError):  # without the fix, the error left the turn
        run_lane(1)

    lane = BatchLane.objects.get()
    assert (lane.holder, lane.lease_expires_at) == ("", None)
    assert queued_turns(broker) == [] and lane.queued_at is None
    assert lane.next_batch_at >= before + timedelta(seconds=lanes.ERROR_BACKOFF_SECONDS)
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert [str(record.exc_info[1]) for record in tracebacks] == ["engine bug"]


# Claims and leases.


def test_each_claim_has_its_own_token_and_expired_leases_come_first(server):
    fresh = two_step_orders(server, 3, prefix="fresh")
    abandoned = two_step_orders(server, 2, prefix="abandoned")
    Order.objects.filter(pk__in=[o.pk for o in abandoned]).update(
        status="running", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    claims = claim_due_orders(limit=3, lease_seconds=60)

    assert [claim.order_pk for claim in claims[:2]] == [o.pk for o in abandoned]
    assert claims[2].order_pk in {o.pk for o in fresh}
    assert len({claim.token for claim in claims}) == 3
    for claim in claims:
        assert Order.objects.get(pk=claim.order_pk).claim_token == claim.token


def test_a_worker_that_lost_its_claim_cannot_write_the_order(server):
    takeover = {}

    def taken_over_during_the_call(_request):
        # The lease ran out while the call was in flight, and another worker claimed it.
        Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now())
        takeover["claims"] = claim_due_orders(
            limit=1, lease_seconds=60, now=timezone.now() + timedelta(seconds=1)
        )
        connection.close()
        return Reply(200, {})

    server.route("POST", "/a", taken_over_during_the_call)
    (order,) = two_step_orders(server, 1)
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)

    assert advance_order(claim.order_pk, claim.token) == "lost"

    order.refresh_from_db()
    (new_claim,) = takeover["claims"]
    assert order.claim_token == new_claim.token != claim.token
    assert order.status == "running" and order.current_step == "a" and order.steps_in_run == 0
    assert server.requests_to("/b") == []


def test_a_worker_whose_claim_was_taken_before_its_first_attempt_sends_nothing(server, monkeypatch):
    """A worker stopped (SIGSTOP) between reading its order and recording the attempt: its
    lease ran out and another worker claimed the order. Resumed, it must not send."""
    server.route("POST", "/a", Reply(200))
    (order,) = two_step_orders(server, 1)
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)
    enter = journal.gate.enter

    def taken_over_while_stopped(host, **kwargs):
        Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now())
        claim_due_orders(limit=1, lease_seconds=60, now=timezone.now() + timedelta(seconds=1))
        return enter(host, **kwargs)

    monkeypatch.setattr(journal.gate, "enter", taken_over_while_stopped)

    assert advance_order(claim.order_pk, claim.token) == "lost"

    assert server.received == []
    order.refresh_from_db()
    assert order.claim_token != claim.token
    assert not order.log.filter(kind="attempt").exists()


# Several worker processes on one database.


def worker_env(**extra) -> dict:
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{settings_dict['NAME']}"
    else:
        host = settings_dict["HOST"] or "127.0.0.1"
        port = settings_dict["PORT"] or 5432
        url = f"postgres://{settings_dict['USER']}@{host}:{port}/{settings_dict['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "STATE_MANAGER_OUTBOUND_ALLOW": "127.0.0.1"}
    env.update({key: str(value) for key, value in extra.items()})
    return env


def start_worker(**env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "process_orders"],
        cwd=ROOT,
        env=worker_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_worker_processes_run_every_step_exactly_once(server):
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    two_step_orders(server, 1000)

    workers = [
        start_worker(STATE_MANAGER_INTERVAL_SECONDS=0, STATE_MANAGER_BATCH_SIZE=50)
        for _ in range(2)
    ]
    try:
        done = wait_until(lambda: Order.objects.filter(status="completed").count() == 1000, 240)
    finally:
        for worker in workers:
            stop(worker)

    assert done, Counter(Order.objects.values_list("status", flat=True))
    keys = Counter(request.headers["Idempotency-Key"] for request in server.received)
    assert len(keys) == 2000
    assert set(keys.values()) == {1}


def test_orders_of_a_killed_worker_are_completed_by_another_after_the_lease(server):
    release = threading.Event()

    def hang_first_time(request):
        if not release.is_set():
            release.wait(30)
        return Reply(200)

    server.route("POST", "/a", hang_first_time)
    server.route("POST", "/b", Reply(200))
    orders = two_step_orders(server, 3)

    doomed = start_worker(STATE_MANAGER_LEASE_SECONDS=2, STATE_MANAGER_INTERVAL_SECONDS=0)
    try:
        assert wait_until(lambda: len(server.requests_to("/a")) == 3, 30)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        stop(doomed)
    release.set()

    survivor = start_worker(STATE_MANAGER_LEASE_SECONDS=2, STATE_MANAGER_INTERVAL_SECONDS=0)
    try:
        done = wait_until(lambda: Order.objects.filter(status="completed").count() == 3, 60)
    finally:
        stop(survivor)

    assert done, list(Order.objects.values_list("order_id", "status", "error"))
    keys = Counter(request.headers["Idempotency-Key"] for request in server.requests_to("/a"))
    assert sorted(keys.values()) == [2, 2, 2]  # the step in flight ran again, same key
    for order in orders:
        outcomes = list(order.log.filter(step="a").values_list("outcome", flat=True))
        assert outcomes == ["interrupted", "succeeded"]


def test_a_batch_ends_even_when_orders_can_neither_run_nor_be_released(monkeypatch):
    """With the database gone mid-batch, every thread still goes on to its next claim: the
    batch returns, and the orders are taken up again once their leases run out."""
    from django.db import OperationalError

    import orders.batch as batch

    for number in range(4):
        make_order([{"id": "a", "end": "completed"}], order_id=f"stuck-{number}")

    def engine_bug(*args, **kwargs):
        raise RuntimeError("engine bug")

    def database_down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(batch, "advance_order", engine_bug)
    monkeypatch.setattr(batch, "release_after_error", database_down)
    finished = threading.Event()
    runner = threading.Thread(
        target=lambda: (run_batch(concurrency=2, lease_seconds=30), finished.set()), daemon=True
    )
    runner.start()
    runner.join(20)

    assert finished.is_set()
    assert set(Order.objects.values_list("status", flat=True)) == {"running"}
