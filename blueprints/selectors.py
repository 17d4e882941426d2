"""What the blueprint pages read about the orders pinned to a blueprint's versions.

Orders sit in the layer above, so they are reached only through the snapshots they are
pinned to (`WorkflowSnapshot.orders`, the reverse of the order's foreign key). Every
count is capped: a page must stay cheap however many orders a version has.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q

from blueprints.models import WorkflowSnapshot

# Counts stop here; a page shows "10,000+".
COUNT_CAP = 10_000
# The order statuses of contract section 5, in the order of an order's life.
ORDER_STATUSES = ("pending", "running", "waiting", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class VersionOrders:
    """The orders pinned to one blueprint version, by status; each count at most
    COUNT_CAP + 1 (more than the cap)."""

    version: int
    snapshot_ids: list[int]
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def orders_by_version(*, workflow: str) -> dict[int, VersionOrders]:
    """For each version of the blueprint `workflow` that orders were created on, its
    orders by status. One query per such version, and six more for one past the cap."""
    snapshots = defaultdict(list)
    rows = WorkflowSnapshot.objects.filter(workflow=workflow).order_by()
    for version, pk in rows.values_list("blueprint_version", "pk"):
        snapshots[version].append(pk)
    return {
        version: VersionOrders(version, sorted(ids), _statuses(ids))
        for version, ids in sorted(snapshots.items(), reverse=True)
    }


def _statuses(snapshot_ids: list[int]) -> dict[str, int]:
    pinned = WorkflowSnapshot.objects.filter(pk__in=snapshot_ids).order_by()
    statuses = pinned.filter(orders__isnull=False).values_list("orders__status", flat=True)
    sample = list(statuses[: COUNT_CAP + 1])
    if len(sample) <= COUNT_CAP:
        counts = Counter(sample)
        return {status: counts[status] for status in ORDER_STATUSES if counts[status]}
    counts = {status: _capped(pinned.filter(orders__status=status)) for status in ORDER_STATUSES}
    return {status: count for status, count in counts.items() if count}


def _capped(snapshots) -> int:
    return len(snapshots.values_list("orders__pk")[: COUNT_CAP + 1])


def parked_order_count(*, workflow: str, step_ids: Iterable[str]) -> int:
    """How many failed orders of the blueprint `workflow` are parked at one of `step_ids`:
    the step that failed, where "reprocess from the failed step" resumes. At most
    COUNT_CAP + 1."""
    step_ids = list(step_ids)
    if not step_ids:
        return 0
    parked = Q(orders__status="failed") & (
        Q(orders__failed_step__in=step_ids) | Q(orders__resume_point__step__in=step_ids)
    )
    return _capped(WorkflowSnapshot.objects.filter(parked, workflow=workflow).order_by())
