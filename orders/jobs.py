"""Bulk reprocess and cancel as jobs: the selection frozen when the job is prepared, so
the orders counted are the orders acted on; small jobs run at once, large ones as a
django-q2 task whose progress the admin shows and the API returns.

A job walks its frozen orders in chunks of CHUNK_SIZE, each chunk one transaction that
also records the progress and the last order done (`options["last_order"]`). The job's
row is locked for the chunk, so a job run twice at once (queued again after its worker
seemed gone) does every chunk once, and a run that stopped half-way is taken up from the
next chunk: `jobs_tidy`, on the minute schedule, queues again a job with no progress for
STALLED_AFTER, and discards prepared jobs nobody confirmed within a day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_q.tasks import async_task

from orders.edits import EditPlan, edit_chunk
from orders.models import BulkJob, BulkJobOrder, Order
from orders.reprocess import ReprocessPlan
from orders.services import BulkResult, cancel_chunk, reprocess_chunk

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
# A job of at most this many orders runs within the request that starts it.
INLINE_LIMIT = 1000
STALLED_AFTER = timedelta(minutes=5)
PREPARED_FOR = timedelta(days=1)
ACTIVE = (BulkJob.Status.QUEUED, BulkJob.Status.RUNNING)


class JobNotPrepared(Exception):
    """The job was started, discarded or never prepared: it cannot be confirmed again."""


def job_prepare(
    *,
    kind: str,
    orders: QuerySet,
    selection: dict,
    options: dict | None = None,
    actor: str,
) -> BulkJob:
    """Freeze the orders `orders` selects now into a prepared job (one INSERT … SELECT);
    the job acts on exactly these, however the selection changes before it runs."""
    options = dict(options or {})
    _check_plan(kind, options, actor)  # refuses bad options now
    with transaction.atomic():
        job = BulkJob.objects.create(kind=kind, selection=selection, options=options, actor=actor)
        job.total = _freeze(job, orders)
        job.save(update_fields=["total"])
    return job


def _freeze(job: BulkJob, orders: QuerySet) -> int:
    if not orders.query.is_sliced:  # a slice keeps its order: it says which orders
        orders = orders.order_by()
    sql, params = orders.values("pk").query.sql_with_params()
    quote = connection.ops.quote_name
    insert = (
        f"INSERT INTO {quote(BulkJobOrder._meta.db_table)} ({quote('job_id')}, "
        f"{quote('order_id')}) SELECT %s, {quote('selected')}.* FROM ({sql}) {quote('selected')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [job.pk, *params])
        return cursor.rowcount


def job_orders(job: BulkJob) -> QuerySet:
    """The orders of the job's frozen selection, oldest first."""
    return Order.objects.filter(pk__in=job.entries.values("order_id")).order_by("pk")


def job_status_counts(job: BulkJob) -> dict[str, int]:
    """The frozen orders by their status now, every status present: one grouped query."""
    counts = dict.fromkeys(Order.Status.values, 0)
    rows = job.entries.values(status=F("order__status")).annotate(count=Count("pk"))
    for row in rows.order_by():
        counts[row["status"]] = row["count"]
    return counts


def job_start(job: BulkJob, *, options: dict | None = None) -> BulkJob:
    """Confirm a prepared job, with the options chosen on confirming: a small one runs now,
    a large one is queued for a django-q2 worker. Raises JobNotPrepared when the job is not
    prepared (a confirmation sent twice starts it once)."""
    options = {**job.options, **(options or {})}
    _check_plan(job.kind, options, job.actor)
    inline = job.total <= INLINE_LIMIT
    status = BulkJob.Status.RUNNING if inline else BulkJob.Status.QUEUED
    options["progress_at"] = timezone.now().isoformat()
    started = BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.PREPARED).update(
        status=status, options=options
    )
    if not started:
        raise JobNotPrepared(f"job {job.pk} is not waiting for a confirmation")
    job.refresh_from_db()
    if inline:
        return job_run(job)
    _queue(job)
    return job


def run_bulk_job(job_id: int) -> str:
    """The django-q2 task of a bulk reprocess or cancel job, from where it stands."""
    job = BulkJob.objects.filter(pk=job_id).first()
    if job is None:
        return f"bulk job {job_id}: no such job"
    job = job_run(job)
    return f"bulk job {job.pk}: {job.status}, {job.done} done, {job.skipped} skipped"


def _queue(job: BulkJob) -> None:
    async_task(run_bulk_job, job.pk, task_name=f"bulk-job-{job.pk}", group="bulk jobs")


def job_run(job: BulkJob, *, progress: Callable[[BulkJob], None] | None = None) -> BulkJob:
    """Run a queued or running job to its end from where it stands; returns it as it ended
    (or as it is, when it is not one to run). `progress` hears the job after each chunk.
    An error fails the job with its message."""
    BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.QUEUED).update(
        status=BulkJob.Status.RUNNING
    )
    BulkJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=timezone.now())
    job.refresh_from_db()
    if job.status != BulkJob.Status.RUNNING:
        return job
    act = _chunk_action(job)
    try:
        while _run_chunk(job.pk, act):
            if progress is not None:
                job.refresh_from_db()
                progress(job)
    except Exception as exc:
        logger.exception("bulk job %s failed", job.pk)
        BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.RUNNING).update(
            status=BulkJob.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
    job.refresh_from_db()
    return job


def _chunk_action(job: BulkJob) -> Callable[[list[int]], BulkResult]:
    if job.kind == BulkJob.Kind.CANCEL:
        return lambda pks: cancel_chunk(pks, actor=job.actor)
    if job.kind == BulkJob.Kind.EDIT:
        edit, then = _edit_plans(job.options, job.actor)
        return lambda pks: edit_chunk(pks, plan=edit, then=then)
    plan = ReprocessPlan(actor=job.actor, **_plan_options(job.options))
    return lambda pks: reprocess_chunk(pks, plan=plan)


def _check_plan(kind: str, options: dict, actor: str) -> None:
    if kind == BulkJob.Kind.REPROCESS:
        ReprocessPlan(actor=actor, **_plan_options(options))
    elif kind == BulkJob.Kind.EDIT:
        _edit_plans(options, actor)


def _edit_plans(options: dict, actor: str) -> tuple[EditPlan, ReprocessPlan | None]:
    """A bulk edit's plan from its options, and the reprocess that follows it, if any."""
    edit = EditPlan(actor=actor, **edit_arguments(options))
    then = options.get("then_reprocess")
    if not then:
        return edit, None
    reprocess = ReprocessPlan(
        actor=actor,
        **_plan_options({**then, "include_completed": False}),
    )
    return edit, reprocess


def edit_arguments(options: dict) -> dict[str, Any]:
    """EditPlan's arguments from an edit's JSON (`set`, `unset`, `payload`, `data`)."""
    arguments = {"reason": options.get("reason", "")}
    for key, name in (("set", "set_paths"), ("unset", "unset_paths")):
        if key in options:
            arguments[name] = options[key]
    for key in ("payload", "data"):
        if key in options:
            arguments[key] = options[key]
    return arguments


def _run_chunk(job_pk: int, act: Callable[[list[int]], BulkResult]) -> bool:
    """The job's next chunk in one transaction, its progress with it; False when there is
    none (the job is then done) or the job stopped running."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job_pk)
        if job.status != BulkJob.Status.RUNNING:
            return False
        last = job.options.get("last_order", 0)
        pks = list(
            job.entries.filter(order_id__gt=last)
            .order_by("order_id")
            .values_list("order_id", flat=True)[:CHUNK_SIZE]
        )
        now = timezone.now()
        if not pks:
            job.status, job.finished_at = BulkJob.Status.DONE, now
            job.save(update_fields=["status", "finished_at"])
            return False
        result = act(pks)
        job.done += result.count
        job.skipped += result.skipped
        job.options = {**job.options, "last_order": pks[-1], "progress_at": now.isoformat()}
        job.save(update_fields=["done", "skipped", "options"])
    return True


def _plan_options(options: dict) -> dict[str, Any]:
    return {
        "start_from": options.get("from", "failed"),
        "version": options.get("version", "pinned"),
        "include_completed": bool(options.get("include_completed", False)),
    }


def job_discard(job: BulkJob) -> bool:
    """Drop a prepared job nobody will confirm, with its frozen selection."""
    discarded = BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.PREPARED).update(
        status=BulkJob.Status.DISCARDED, finished_at=timezone.now()
    )
    if discarded:
        BulkJobOrder.objects.filter(job_id=job.pk).delete()
    return bool(discarded)


def jobs_tidy() -> dict[str, list[int]]:
    """Discard prepared jobs older than PREPARED_FOR, and queue again the queued or running
    jobs that made no progress for STALLED_AFTER (their worker died, or the broker lost
    the task); returns the ids of each."""
    now = timezone.now()
    stale = BulkJob.objects.filter(
        status=BulkJob.Status.PREPARED, created_at__lt=now - PREPARED_FOR
    )
    discarded = [job.pk for job in stale.only("pk") if job_discard(job)]
    requeued = []
    for job in BulkJob.objects.filter(status__in=ACTIVE):
        last = _last_sign_of_life(job)
        if now - last > STALLED_AFTER:
            logger.warning("bulk job %s made no progress since %s: queued again", job.pk, last)
            _queue(job)
            job.options = {**job.options, "progress_at": now.isoformat()}
            job.save(update_fields=["options"])
            requeued.append(job.pk)
    return {"discarded": discarded, "requeued": requeued}


def _last_sign_of_life(job: BulkJob):
    progress_at = job.options.get("progress_at")
    if progress_at:
        return parse_datetime(progress_at)
    return job.started_at or job.created_at
