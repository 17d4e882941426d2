"""Reads about orders and batches, for the health view and the admin dashboard, and what
"due" and "failed at a step" mean wherever an order list, a count or a filter says so.

Each costs the same at a million orders as at a thousand: counts stop at `COUNT_CAP`, the
whole table is PostgreSQL's estimate once it is large, and the rest reads a few index
entries, or the entries of what it is about: the failed orders support has yet to handle,
the log of a time window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.functional import cached_property

from blueprints.models import Blueprint
from definitions.graph import step_kind
from orders.models import BatchLane, BatchRun, Order, StepLog

# The dashboard's counts and /health/'s `due` count this many orders at most, so that they
# read at most this many index entries whatever the table and the backlog hold.
COUNT_CAP = 10_000
# From this many rows, the whole orders table is counted by PostgreSQL's estimate.
ESTIMATE_FROM_ROWS = 100_000


def capped_count(queryset: QuerySet, cap: int) -> int:
    """The rows of `queryset`, counted up to `cap`: `cap` means "`cap` or more"."""
    return queryset.order_by()[:cap].count()


def row_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows of `queryset`'s whole table (as of its last
    ANALYZE), or None on other databases and before the table was first analysed."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    """Counts filtered lists exactly, but takes PostgreSQL's row estimate for the whole
    table once it is large: an exact count of millions of rows costs seconds."""

    @cached_property
    def count(self):
        if not self.object_list.query.where:
            estimate = row_estimate(self.object_list)
            if estimate is not None and estimate >= ESTIMATE_FROM_ROWS:
                return estimate
        return super().count


def due_conditions(now: datetime) -> tuple[Q, Q]:
    """What makes an order due, as the batch's claim (`orders.claims.claim_due_orders`)
    takes orders: a pending or waiting order whose time came, or a running order whose
    worker's lease ran out (the worker died). Two conditions, each served by its own index
    (`order_claimable_due`, `order_lease`).

    The orders of a paused blueprint are due too, but held: the claim leaves them out
    (`orders.claims.paused_workflows`), so what a batch may claim is the due orders less
    the held ones (`held_by_paused_blueprints`). So are the orders whose concurrency key a
    running order of their workflow holds (`orders.claims.key_free`): due, held until it
    is done."""
    return (
        Q(status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now),
        Q(status=Order.Status.RUNNING, lease_expires_at__lt=now),
    )


def orders_due(now: datetime | None = None, *, base: QuerySet | None = None) -> QuerySet:
    """The orders of `base` (default: all) that the next batch could claim: "due"."""
    time_came, lease_ran_out = due_conditions(now or timezone.now())
    return (Order.objects.all() if base is None else base).filter(time_came | lease_ran_out)


def orders_due_count(now: datetime | None = None, *, workflow: str = "") -> int:
    """The due orders (`orders_due`), of the blueprint `workflow` when given, counted up to
    `COUNT_CAP` (which means "that many or more"): one condition at a time, each read from
    its index and stopping at the cap, rather than with the OR of both, which reads every
    due order."""
    orders = Order.objects.filter(workflow=workflow) if workflow else Order.objects.all()
    due = 0
    for condition in due_conditions(now or timezone.now()):
        if due < COUNT_CAP:
            due += capped_count(orders.filter(condition), COUNT_CAP - due)
    return due


def held_by_paused_blueprints(now: datetime | None = None) -> list[dict]:
    """The paused blueprints, each with when and by whom it was paused and its due orders,
    which batches leave due until it is resumed, counted up to `COUNT_CAP`: `{"blueprint",
    "held"}`, by slug."""
    now = now or timezone.now()
    paused = Blueprint.objects.filter(paused_at__isnull=False).order_by("slug")
    return [
        {"blueprint": blueprint, "held": orders_due_count(now, workflow=blueprint.slug)}
        for blueprint in paused
    ]


def oldest_due_at(now: datetime | None = None) -> datetime | None:
    """When the longest-waiting due pending or waiting order became due (the first entry of
    the index `order_claimable_due`), or None when none is due."""
    time_came, _ = due_conditions(now or timezone.now())
    return (
        Order.objects.filter(time_came).order_by("due_at").values_list("due_at", flat=True).first()
    )


def running_lanes(now: datetime | None = None) -> list[BatchLane]:
    """The batch lanes in a turn now (their worker's lease is live), by number."""
    return list(
        BatchLane.objects.filter(lease_expires_at__gte=now or timezone.now()).exclude(holder="")
    )


# Log entries that end a step's attempt (or a step without a call), as the throughput shows.
FINISHED_OUTCOMES = [
    StepLog.Outcome.SUCCEEDED,
    StepLog.Outcome.FAILED,
    StepLog.Outcome.RETRYING,
    StepLog.Outcome.WAITING,
]
# Those of them that are failures, as the dashboard's chart counts them.
FAILED_OUTCOMES = [StepLog.Outcome.FAILED, StepLog.Outcome.RETRYING]


def steps_per_minute(minutes: int = 15, now: datetime | None = None) -> list[int]:
    """Attempts and steps finished in each of the last `minutes` whole minutes and the
    current one so far, oldest first."""
    return activity_per_minute(minutes, now)[0]


def last_batch() -> BatchRun | None:
    return BatchRun.objects.order_by("-started_at").first()


def order_counts_by_status() -> dict[str, int]:
    """Every status with its orders counted up to `COUNT_CAP` (which means "that many or
    more"), 0 for those no order has: a query per status, each reading at most that many
    index entries."""
    return {
        status: capped_count(Order.objects.filter(status=status), COUNT_CAP)
        for status in Order.Status.values
    }


def orders_total() -> tuple[int, bool]:
    """All orders, and whether that is PostgreSQL's estimate (a large table) or exact."""
    estimate = row_estimate(Order.objects.all())
    if estimate is not None and estimate >= ESTIMATE_FROM_ROWS:
        return estimate, True
    return Order.objects.count(), False


def orders_failed_at(step: str, *, base: QuerySet | None = None) -> QuerySet:
    """The orders of `base` (default: all) whose run took the failure of `step`: the call,
    parallel or choice step that failed, not the `end` step its `on_failed` path led to.
    The order list's "failed step" filter and the dashboard's failures select with this;
    the partial index `order_failed_step` serves it."""
    return (Order.objects.all() if base is None else base).filter(failed_step=step)


def failed_orders_by_step(limit: int = 20) -> list[dict]:
    """Failed orders counted by blueprint and the step that failed (`orders_failed_at`),
    most first, with the reason the latest of them failed for: `{"workflow", "step",
    "count", "reason"}`. Orders, not attempts: an order retried five times at a step counts
    once. One grouped query over the failed orders (those support has yet to reprocess or
    cancel), read through the partial index of failed steps."""
    failed = Order.objects.filter(status=Order.Status.FAILED)
    latest = failed.filter(
        workflow=OuterRef("workflow"), failed_step=OuterRef("failed_step")
    ).order_by("-finished_at", "-id")
    rows = (
        failed.exclude(failed_step="")
        .order_by()
        .values("workflow", "failed_step")
        .annotate(count=Count("pk"), reason=Subquery(latest.values("failed_reason")[:1]))
        .order_by("-count", "workflow", "failed_step")[:limit]
    )
    return [
        {
            "workflow": row["workflow"],
            "step": row["failed_step"],
            "count": row["count"],
            "reason": row["reason"] or "",
        }
        for row in rows
    ]


# The kinds of step whose run can fail: a call, a parallel step's branch, a choice's `when`.
FAILING_KINDS = ("call", "parallel", "choice")


def failing_steps(workflow: str = "") -> list[str]:
    """The ids of the steps that can fail (`FAILING_KINDS`) in the blueprints, or in the
    blueprint `workflow` when given, sorted: the choices of the order list's failed-step
    filter, read from the blueprints rather than from a DISTINCT over every order."""
    blueprints = Blueprint.objects.order_by()
    if workflow:
        blueprints = blueprints.filter(slug=workflow)
    return sorted(
        {
            step["id"]
            for steps in blueprints.values_list("steps", flat=True)
            for step in (steps if isinstance(steps, list) else [])
            if isinstance(step, dict) and "id" in step and step_kind(step) in FAILING_KINDS
        }
    )


def activity_per_minute(minutes: int, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Attempts and steps finished in each of the last `minutes` whole minutes (the current
    one so far last), and those of them that failed (retried or not), oldest first. One
    grouped query over the log entries of the window, read from the index on (outcome,
    started_at)."""
    current = (now or timezone.now()).replace(second=0, microsecond=0)
    first = current - timedelta(minutes=minutes - 1)
    rows = (
        StepLog.objects.filter(
            outcome__in=FINISHED_OUTCOMES,
            kind__in=[StepLog.Kind.ATTEMPT, StepLog.Kind.STEP],
            started_at__gte=first,
        )
        .annotate(minute=TruncMinute("started_at"))
        .order_by()
        .values("minute", "outcome")
        .annotate(count=Count("pk"))
    )
    index = {first + timedelta(minutes=i): i for i in range(minutes)}
    steps, failures = [0] * minutes, [0] * minutes
    for row in rows:
        i = index.get(row["minute"])
        if i is None:
            continue
        steps[i] += row["count"]
        if row["outcome"] in FAILED_OUTCOMES:
            failures[i] += row["count"]
    return steps, failures


def attempts_made(orders: list[Order]) -> dict[int, int]:
    """For each of `orders` (a page of the list), the attempts its current run made at the
    step that failed, or else at its current step (a parallel step's: its branches' most):
    from the log, as the order's own `attempt` is reset when an `on_failed` path begins.
    One query for the page."""
    wanted = {order.pk: (order.run, order.failed_step or order.current_step) for order in orders}
    rows = (
        StepLog.objects.filter(order_id__in=list(wanted), kind=StepLog.Kind.ATTEMPT)
        .order_by()
        .values("order_id", "run", "step")
        .annotate(last=Max("attempt"))
    )
    made: dict[int, int] = {}
    for row in rows:
        run, step = wanted[row["order_id"]]
        if row["run"] == run and (row["step"] == step or row["step"].startswith(f"{step}.")):
            made[row["order_id"]] = max(made.get(row["order_id"], 0), row["last"])
    return made


def orders_logged_during(batch: BatchRun, *, base: QuerySet | None = None) -> QuerySet:
    """The orders of `base` (default: all) with a log entry written while `batch` ran (until
    now if it still runs): the orders it advanced, and those of batches that ran at the
    same time on other workers (no entry records its batch). The IN list of every outcome
    lets the index on (outcome, started_at) serve the time range."""
    window = StepLog.objects.filter(
        outcome__in=StepLog.Outcome.values,
        started_at__gte=batch.started_at,
        started_at__lte=batch.ended_at or timezone.now(),
    )
    return (Order.objects.all() if base is None else base).filter(pk__in=window.values("order_id"))
