"""orders.jobs: bulk reprocess and cancel over a frozen selection, set-based, in chunks,
at once or as a django-q2 task, and taken up again after an interruption."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from blueprints import services as blueprint_services
from orders import jobs, services
from orders.jobs import (
    JobNotPrepared,
    job_prepare,
    job_run,
    job_start,
    job_status_counts,
    jobs_tidy,
)
from orders.models import BulkJob, BulkJobOrder, Callback, Order, StepLog
from orders.services import ReprocessInvalid
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

FAILED_AT_SHIP = {
    "current_step": "ship",
    "data": {"charge_id": 7, "note": "after"},
    "resume_point": {"step": "ship", "data": {"charge_id": 7}},
    "error": 'step "ship": status 500',
    "failed_step": "ship",
    "failed_http_status": 500,
}


def reprocess_job(orders=None, **options) -> BulkJob:
    return job_prepare(
        kind=BulkJob.Kind.REPROCESS,
        orders=Order.objects.all() if orders is None else orders,
        selection={"status": ["failed"]},
        options={"from": "failed", **options},
        actor="ann",
    )


def cancel_job(orders=None) -> BulkJob:
    return job_prepare(
        kind=BulkJob.Kind.CANCEL,
        orders=Order.objects.all() if orders is None else orders,
        selection={},
        actor="ann",
    )


@pytest.fixture
def broker():
    """The project's django-q2 broker, emptied around a test."""
    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


def queued_tasks(broker) -> list[dict]:
    tasks = []
    while broker.queue_size():
        for _task_id, package in broker.dequeue() or []:
            tasks.append(SignedPackage.loads(package))
    return tasks


# The frozen selection.


def test_a_job_acts_on_the_orders_selected_when_it_was_prepared(shop):
    for number in range(3):
        shop_order(f"A-{number}", "failed")
    job = reprocess_job(Order.objects.filter(status="failed"))
    shop_order("B-1", "failed")  # matches the filter too, but after the job was prepared

    job = job_start(job)

    assert (job.status, job.total, job.done, job.skipped) == ("done", 3, 3, 0)
    assert Order.objects.get(order_id="B-1").status == "failed"
    assert Order.objects.filter(status="pending").count() == 3


def test_the_orders_counted_are_the_orders_acted_on_or_skipped(shop):
    for order_id, status in {
        "F": "failed",
        "X": "cancelled",
        "R": "running",
        "C": "completed",
    }.items():
        shop_order(order_id, status)
    job = reprocess_job()
    counts = job_status_counts(job)

    job = job_start(job)

    assert counts == {
        **dict.fromkeys(Order.Status.values, 0),
        "failed": 1,
        "cancelled": 1,
        "running": 1,
        "completed": 1,
    }
    assert sum(counts.values()) == job.total == job.done + job.skipped
    assert (job.done, job.skipped) == (2, 2)


def test_a_confirmation_sent_twice_starts_the_job_once(shop):
    shop_order("A-1", "failed")
    job = reprocess_job()
    job_start(job)

    with pytest.raises(JobNotPrepared):
        job_start(job)

    assert StepLog.objects.filter(kind="reprocess").count() == 1


def test_bad_options_are_refused_when_the_job_is_prepared(shop):
    with pytest.raises(ReprocessInvalid, match="version"):
        reprocess_job(version="newest")
    assert not BulkJob.objects.exists()


# The rules, set-based.


def test_a_job_resumes_each_order_at_its_failed_step_with_the_data_saved_before_it(shop):
    order = shop_order("A-1", "failed", **FAILED_AT_SHIP)
    Callback.objects.create(token="t1", order=order, run=1, step="ship", expires_at=timezone.now())

    job_start(reprocess_job())

    order.refresh_from_db()
    assert (order.status, order.current_step, order.data, order.run) == (
        "pending",
        "ship",
        {"charge_id": 7},
        2,
    )
    assert (order.error, order.failed_step, order.failed_http_status) == ("", "", None)
    assert (order.resume_point, order.attempt, order.finished_at) == ({}, 0, None)
    assert order.due_at is not None
    assert Callback.objects.get(token="t1").status == "expired"
    entry = StepLog.objects.get(order=order)
    assert (entry.kind, entry.run, entry.step, entry.outcome, entry.actor) == (
        "reprocess",
        2,
        "ship",
        "requested",
        "ann",
    )
    assert entry.request == {"from": "failed", "version": "pinned"}


def test_an_order_without_a_resume_point_resumes_at_its_current_step(shop):
    order = shop_order("A-1", "failed", current_step="ship", data={"x": 1})

    job_start(reprocess_job())

    order.refresh_from_db()
    assert (order.current_step, order.data) == ("ship", {"x": 1})


def test_a_job_from_the_start_begins_at_the_first_step_with_empty_data(shop):
    shop_order("A-1", "failed", **FAILED_AT_SHIP)
    shop_order("A-2", "completed", current_step="ship")

    job = job_start(reprocess_job(**{"from": "start"}), options={"include_completed": True})

    assert (job.done, job.skipped) == (2, 0)
    rows = list(Order.objects.values_list("status", "current_step", "data", "run"))
    assert rows == [("pending", "charge", {}, 2)] * 2


def test_a_job_on_the_latest_version_skips_orders_whose_step_is_gone(shop):
    shop_order("A-1", "failed", current_step="ship")
    kept = shop_order("A-2", "failed", current_step="charge")
    blueprint_services.blueprint_save(
        definition={
            "slug": "shop",
            "name": "Shop",
            "steps": [{"id": "charge", "call": "shop.charge"}],
        }
    )

    job = job_start(reprocess_job(version="latest"))

    assert (job.done, job.skipped) == (1, 1)
    kept.refresh_from_db()
    assert kept.snapshot.blueprint_version == 2
    assert Order.objects.get(order_id="A-1").run == 1


def test_a_cancel_job_cancels_at_once_or_asks_a_running_order_to_stop(shop):
    for status in Order.Status.values:
        shop_order(status, status)

    job = job_start(cancel_job())

    assert (job.done, job.skipped) == (4, 2)
    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert statuses == {
        **{s: "cancelled" for s in ("pending", "waiting", "failed")},
        "running": "running",
        "completed": "completed",
        "cancelled": "cancelled",
    }
    assert Order.objects.get(order_id="running").cancel_requested
    assert Order.objects.get(order_id="pending").due_at is None
    assert StepLog.objects.filter(kind="cancel", actor="ann").count() == 4


# Chunks.


def test_a_job_walks_its_orders_in_chunks_with_progress_after_each(shop, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK_SIZE", 2)
    for number in range(5):
        shop_order(f"A-{number}", "failed")
    job = reprocess_job()
    BulkJob.objects.filter(pk=job.pk).update(status="queued")
    seen = []

    job = job_run(job, progress=lambda job: seen.append(job.done))

    assert seen == [2, 4, 5]
    assert (job.status, job.done) == ("done", 5)
    assert job.started_at <= job.finished_at


def chunk_queries(count: int, monkeypatch) -> int:
    """Queries of one chunk of `count` failed orders, in a queued job."""
    monkeypatch.setattr(jobs, "CHUNK_SIZE", count)
    Order.objects.all().delete()
    for number in range(count):
        shop_order(f"A-{number}", "failed", **FAILED_AT_SHIP)
    job = reprocess_job()
    BulkJob.objects.filter(pk=job.pk).update(status="queued")
    with CaptureQueriesContext(connection) as queries:
        assert job_run(job).done == count
    return len(queries)


def test_the_queries_of_a_chunk_do_not_grow_with_its_orders(shop, monkeypatch):
    assert chunk_queries(2, monkeypatch) == chunk_queries(40, monkeypatch)


def test_a_chunk_is_a_fixed_number_of_statements(shop, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK_SIZE", 10)
    for number in range(30):
        shop_order(f"A-{number}", "failed")
    job = reprocess_job()
    BulkJob.objects.filter(pk=job.pk).update(status="queued")

    with CaptureQueriesContext(connection) as queries:
        job_run(job)

    statements = [q["sql"] for q in queries]
    orders = [sql for sql in statements if sql.startswith('UPDATE "orders_order"')]
    logs = [sql for sql in statements if sql.startswith('INSERT INTO "orders_steplog"')]
    assert (len(orders), len(logs)) == (3, 3)


# django-q2.


def test_a_large_job_is_queued_for_a_django_q2_worker(shop, broker, monkeypatch):
    monkeypatch.setattr(jobs, "INLINE_LIMIT", 2)
    for number in range(3):
        shop_order(f"A-{number}", "failed")

    job = job_start(reprocess_job())

    assert (job.status, job.done) == ("queued", 0)
    assert Order.objects.filter(status="failed").count() == 3
    (task,) = queued_tasks(broker)
    assert (task["func"], task["args"]) == (jobs.run_bulk_job, (job.pk,))

    result = task["func"](*task["args"])  # as a worker runs it

    job.refresh_from_db()
    assert result == f"bulk job {job.pk}: done, 3 done, 0 skipped"
    assert (job.status, job.done) == ("done", 3)
    assert Order.objects.filter(status="pending").count() == 3


def test_a_small_job_runs_at_once_without_a_worker(shop, broker):
    shop_order("A-1", "failed")

    job = job_start(reprocess_job())

    assert job.status == "done"
    assert queued_tasks(broker) == []


# Interruptions.


class WorkerDied(BaseException):
    """What a killed worker looks like to the code it ran: nothing after it runs."""


def test_a_job_whose_worker_died_is_queued_again_and_does_the_rest(shop, broker, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK_SIZE", 2)
    monkeypatch.setattr(jobs, "INLINE_LIMIT", 0)
    for number in range(5):
        shop_order(f"A-{number}", "failed")
    job = job_start(reprocess_job())
    queued_tasks(broker)

    def dies_after_the_first_chunk(job):
        raise WorkerDied

    with pytest.raises(WorkerDied):
        job_run(job, progress=dies_after_the_first_chunk)
    job.refresh_from_db()
    assert (job.status, job.done) == ("running", 2)
    assert jobs_tidy() == {"discarded": [], "requeued": []}  # not stalled yet

    long_ago = timezone.now() - jobs.STALLED_AFTER - timedelta(seconds=1)
    BulkJob.objects.filter(pk=job.pk).update(
        options={**job.options, "progress_at": long_ago.isoformat()}
    )
    assert jobs_tidy() == {"discarded": [], "requeued": [job.pk]}
    (task,) = queued_tasks(broker)
    task["func"](*task["args"])

    job.refresh_from_db()
    assert (job.status, job.done, job.skipped) == ("done", 5, 0)
    assert set(Order.objects.values_list("run", flat=True)) == {2}
    assert StepLog.objects.filter(kind="reprocess").count() == 5


def test_an_error_fails_the_job_with_its_message_and_keeps_the_chunk_unchanged(shop, monkeypatch):
    shop_order("A-1", "failed")

    def broken(pks, *, plan):
        Order.objects.filter(pk__in=pks).update(status="pending")
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(jobs, "reprocess_chunk", broken)
    job = job_start(reprocess_job())

    assert (job.status, job.error) == ("failed", "RuntimeError: the disk is full")
    assert job.finished_at is not None
    assert Order.objects.get(order_id="A-1").status == "failed"


def test_a_finished_job_run_again_does_nothing(shop):
    shop_order("A-1", "failed")
    job = job_start(reprocess_job())

    job = job_run(job)

    assert (job.status, job.done) == ("done", 1)
    assert StepLog.objects.filter(kind="reprocess").count() == 1


def test_prepared_jobs_nobody_confirmed_are_discarded_after_a_day(shop, monkeypatch):
    shop_order("A-1", "failed")
    old, recent = reprocess_job(), reprocess_job()
    BulkJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))

    assert jobs_tidy() == {"discarded": [old.pk], "requeued": []}

    old.refresh_from_db()
    assert old.status == "discarded"
    assert not BulkJobOrder.objects.filter(job=old).exists()
    assert BulkJob.objects.get(pk=recent.pk).status == "prepared"
    with pytest.raises(JobNotPrepared):
        job_start(old)


# PostgreSQL: several transactions at once.

postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: PostgreSQL only"
)


@postgresql
@pytest.mark.django_db(transaction=True)
def test_orders_a_worker_holds_meanwhile_are_skipped(shop):
    held, free = shop_order("A-1", "pending"), shop_order("A-2", "pending")
    job = cancel_job()
    locked, release = threading.Event(), threading.Event()

    def worker_claims_a_1():
        try:
            with transaction.atomic():
                Order.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(3)
        finally:
            connections.close_all()

    claim = threading.Thread(target=worker_claims_a_1)
    claim.start()
    assert locked.wait(10)
    try:
        job = job_start(job)
    finally:
        release.set()
        claim.join()

    assert (job.done, job.skipped) == (1, 1)
    assert Order.objects.get(pk=held.pk).status == "pending"
    assert Order.objects.get(pk=free.pk).status == "cancelled"


@postgresql
@pytest.mark.django_db(transaction=True)
def test_a_job_run_by_two_workers_at_once_does_each_chunk_once(shop, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK_SIZE", 3)
    for number in range(20):
        shop_order(f"A-{number}", "failed")
    job = reprocess_job()
    BulkJob.objects.filter(pk=job.pk).update(status="queued")
    both = threading.Barrier(2, timeout=10)

    def run():
        try:
            both.wait()
            job_run(BulkJob.objects.get(pk=job.pk))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    job.refresh_from_db()
    assert (job.status, job.done, job.skipped) == ("done", 20, 0)
    assert set(Order.objects.values_list("run", flat=True)) == {2}
    assert StepLog.objects.filter(kind="reprocess").count() == 20


# The command, which walks its selection in the same chunks.


def test_the_command_prints_a_progress_line_after_each_chunk_of_a_large_selection(
    shop, monkeypatch
):
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    for number in range(5):
        shop_order(f"A-{number}", "failed")
    out = StringIO()

    call_command("reprocess_orders", "--status", "failed", "--from", "failed", stdout=out)

    assert out.getvalue().splitlines() == [
        "... 2 orders: 2 reprocessed, 0 skipped",
        "... 4 orders: 4 reprocessed, 0 skipped",
        "... 5 orders: 5 reprocessed, 0 skipped",
        "Reprocessed 5 orders; skipped 0 (pending, running, waiting or completed).",
    ]
