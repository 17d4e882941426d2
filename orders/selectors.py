"""Reads about orders and batches, for the health view and the admin dashboard, and what
"due" and "failed at a step" mean wherever an order list, a count or a filter says so.

Each costs the same at a million orders as at a thousand: counts stop at `COUNT_CAP`, the
whole table is PostgreSQL's estimate once it is large, and the rest reads a few index
entries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.functional import cached_property

from orders.models import BatchLane, BatchRun, Order, StepLog

# The dashboard's counts and /health/'s `due` count this many orders at most, so that they
# read at most this many index entries whatever the table and the backlog hold.
COUNT_CAP = 10_000
# From this many rows, the whole orders table is counted by PostgreSQL's estimate.
ESTIMATE_FROM_ROWS = 100_000
# The dashboard's failures by step, and the order list they link to, look this far back.
FAILURES_WINDOW = timedelta(hours=24)


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
    (`order_claimable_due`, `order_lease`)."""
    return (
        Q(status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now),
        Q(status=Order.Status.RUNNING, lease_expires_at__lt=now),
    )


def orders_due(now: datetime | None = None, *, base: QuerySet | None = None) -> QuerySet:
    """The orders of `base` (default: all) that the next batch could claim: "due"."""
    time_came, lease_ran_out = due_conditions(now or timezone.now())
    return (Order.objects.all() if base is None else base).filter(time_came | lease_ran_out)


def orders_due_count(now: datetime | None = None) -> int:
    """The due orders (`orders_due`), counted up to `COUNT_CAP` (which means "that many or
    more"): one condition at a time, each read from its index and stopping at the cap,
    rather than with the OR of both, which reads every due order."""
    due = 0
    for condition in due_conditions(now or timezone.now()):
        if due < COUNT_CAP:
            due += capped_count(Order.objects.filter(condition), COUNT_CAP - due)
    return due


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


def steps_per_minute(minutes: int = 15, now: datetime | None = None) -> list[int]:
    """Attempts and steps finished in each of the last `minutes` whole minutes and the
    current one so far, oldest first; read from the index on (outcome, started_at)."""
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
        .values("minute")
        .annotate(count=Count("pk"))
    )
    counts = {row["minute"]: row["count"] for row in rows}
    return [counts.get(first + timedelta(minutes=i), 0) for i in range(minutes)]


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


def failures_since(since: datetime) -> QuerySet:
    """Failed attempts and failed steps since `since`: what the dashboard counts per step
    and what the order list's "failed at step" filter looks for."""
    return StepLog.objects.filter(
        started_at__gte=since,
        outcome=StepLog.Outcome.FAILED,
        kind__in=[StepLog.Kind.ATTEMPT, StepLog.Kind.STEP],
    )


def failed_steps_since(since: datetime) -> list[tuple[str, int]]:
    """Failures per step since `since`, most failures first."""
    rows = (
        failures_since(since)
        .order_by()
        .values("step")
        .annotate(count=Count("pk"))
        .order_by("-count", "step")
    )
    return [(row["step"], row["count"]) for row in rows]


def orders_failed_at(
    step: str, since: datetime | None = None, *, base: QuerySet | None = None
) -> QuerySet:
    """The orders of `base` (default: all) that failed at `step` since `since` (default: the
    last `FAILURES_WINDOW`)."""
    since = since or timezone.now() - FAILURES_WINDOW
    failed = failures_since(since).filter(step=step).values("order_id")
    return (Order.objects.all() if base is None else base).filter(pk__in=failed)
