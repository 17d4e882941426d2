"""Retention: finished orders older than a number of days are deleted with their logs,
optionally written to a JSON-lines file first; and partners' messages go once no order
needs them: a kept one after its TTL, a taken one with the orders that took it.

A chunk of CHUNK_SIZE orders is one short transaction, so the orders table is never
locked for long and the webhook and the batches go on meanwhile. Each order is checked
again inside its chunk's transaction: one reprocessed since it was selected is kept.
An exported chunk is on disk (flushed and synced) before its transaction commits, so a
crash loses nothing that was deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from orders.models import Message, Order, StepLog

CHUNK_SIZE = 500

ORDER_FIELDS = [
    "order_id",
    "workflow",
    "status",
    "payload",
    "data",
    "error",
    "run",
    "current_step",
    "failed_step",
    "failed_reason",
    "created_at",
    "finished_at",
]


@dataclass(frozen=True)
class PurgeResult:
    orders: int
    log_entries: int


def purgeable_orders(*, older_than_days: int, now: datetime | None = None) -> QuerySet:
    """Completed, failed and cancelled orders that finished more than the days ago."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    finished_before = Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, updated_at__lt=cutoff)
    return Order.objects.filter(finished_before, status__in=Order.FINISHED)


def purge_count(*, older_than_days: int) -> PurgeResult:
    """What a purge would delete now (the dry run)."""
    selection = purgeable_orders(older_than_days=older_than_days)
    return PurgeResult(
        orders=selection.count(),
        log_entries=StepLog.objects.filter(order__in=selection.values("pk")).count(),
    )


def purge_orders(
    *,
    older_than_days: int,
    export: IO[str] | None = None,
    progress: Callable[[PurgeResult], None] | None = None,
) -> PurgeResult:
    """Delete the purgeable orders and their logs chunk by chunk; returns the totals."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    now = timezone.now()
    orders = log_entries = 0
    last_pk = 0
    while True:
        selection = purgeable_orders(older_than_days=older_than_days, now=now)
        pks = list(
            selection.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:CHUNK_SIZE]
        )
        if not pks:
            break
        last_pk = pks[-1]
        with transaction.atomic():
            locked = list(
                selection.select_for_update(of=("self",)).filter(pk__in=pks).order_by("pk")
            )
            if export is not None:
                _export(locked, export)
            _, deleted = Order.objects.filter(pk__in=[order.pk for order in locked]).delete()
        orders += deleted.get(Order._meta.label, 0)
        log_entries += deleted.get(StepLog._meta.label, 0)
        if progress is not None:
            progress(PurgeResult(orders=orders, log_entries=log_entries))
    return PurgeResult(orders=orders, log_entries=log_entries)


def purge_messages(*, now: datetime | None = None) -> int:
    """Delete the messages no longer kept (their TTL passed, or they resumed the orders
    waiting when they came) that no order's wait holds: the waits go with their orders.
    A message still kept is never deleted here, so an order starting to wait can take it."""
    now = now or timezone.now()
    unneeded = Message.objects.filter(Q(kept_until__isnull=True) | Q(kept_until__lte=now))
    unneeded = unneeded.filter(waits__isnull=True)
    deleted = 0
    while pks := list(unneeded.order_by("pk").values_list("pk", flat=True)[:CHUNK_SIZE]):
        deleted += Message.objects.filter(pk__in=pks, waits__isnull=True).delete()[0]
    return deleted


def _export(orders: list[Order], out: IO[str]) -> None:
    """One JSON line per order, with its log oldest first; on disk before the delete."""
    log: dict[int, list[dict]] = {order.pk: [] for order in orders}
    entries = StepLog.objects.filter(order_id__in=log.keys()).order_by("order_id", "id")
    for entry in entries.values("order_id", *StepLog.REPORTED_FIELDS):
        log[entry.pop("order_id")].append(entry)
    for order in orders:
        record = {name: getattr(order, name) for name in ORDER_FIELDS}
        record["log"] = log[order.pk]
        out.write(json.dumps(record, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n")
    out.flush()
    try:
        os.fsync(out.fileno())
    except OSError:  # not a file on disk (standard output, a pipe)
        pass
