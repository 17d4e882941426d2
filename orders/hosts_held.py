"""The orders an outbound host's gate holds: left `waiting` with `step_state["held"] =
{"host", "kind", "count", "reason"}` (orders.engine.runner's `hold`). When a paused host
is resumed, those its pause held are due at once rather than when their backoff ends;
the dashboard and the host's admin page count them."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from django.db.models.fields.json import KT
from django.utils import timezone

from core import doorbell
from orders.models import Order


def orders_held_by(host: str, *, kind: str = ""):
    """The waiting orders the gate of `host` holds, for any reason or for `kind` (paused,
    breaker, concurrency, rate, limits)."""
    held = Order.objects.filter(status=Order.Status.WAITING, step_state__held__host=host)
    return held.filter(step_state__held__kind=kind) if kind else held


def release_orders_held_by_pause(*, host: str) -> int:
    """Make the orders held because `host` was paused due now; returns how many. Orders
    already due, or held by another host or for another reason, are left as they are."""
    now = timezone.now()
    released = orders_held_by(host, kind="paused").filter(due_at__gt=now).update(due_at=now)
    if released:
        doorbell.ring(doorbell.ORDERS)
    return released


def on_host_resumed(sender, *, host: str, **kwargs) -> None:
    """The receiver of `hosts.signals.host_resumed`."""
    release_orders_held_by_pause(host=host)


def held_order_counts(hosts: Iterable[str]) -> dict[str, int]:
    """Each host with the orders its gate holds: one grouped count over the waiting
    orders, whatever the number of hosts."""
    names = list(hosts)
    counts = dict.fromkeys(names, 0)
    if not names:
        return counts
    rows = (
        Order.objects.filter(status=Order.Status.WAITING, step_state__held__host__in=names)
        .annotate(held_host=KT("step_state__held__host"))
        .values("held_host")
        .annotate(count=Count("pk"))
        .values_list("held_host", "count")
    )
    counts.update({host: count for host, count in rows if host in counts})
    return counts
