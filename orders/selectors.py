"""Reads about orders and batches, for the health view and the admin dashboard."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from orders.claims import claimable
from orders.models import BatchRun, Order, StepLog


def orders_due_count(now: datetime | None = None) -> int:
    """Orders the next batch could claim: due pending/waiting ones and those of dead workers."""
    return Order.objects.filter(claimable(now or timezone.now())).count()


def last_batch() -> BatchRun | None:
    return BatchRun.objects.order_by("-started_at").first()


def order_counts_by_status() -> dict[str, int]:
    """Every status, with 0 for those no order has."""
    counts = dict.fromkeys(Order.Status.values, 0)
    for row in Order.objects.order_by().values("status").annotate(count=Count("pk")):
        counts[row["status"]] = row["count"]
    return counts


def failed_steps_since(since: datetime) -> list[tuple[str, int]]:
    """Failed attempts and failed steps per step since `since`, most failures first."""
    rows = (
        StepLog.objects.filter(
            started_at__gte=since,
            outcome=StepLog.Outcome.FAILED,
            kind__in=[StepLog.Kind.ATTEMPT, StepLog.Kind.STEP],
        )
        .order_by()
        .values("step")
        .annotate(count=Count("pk"))
        .order_by("-count", "step")
    )
    return [(row["step"], row["count"]) for row in rows]
