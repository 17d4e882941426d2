"""Exclusive claims on due orders, held by leases that the claiming worker renews.

PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`, so workers on many machines claim
disjoint orders without waiting on each other. SQLite: the claim runs in one
`BEGIN IMMEDIATE` transaction (the project's SQLite setting), which serialises
writers, so the select-then-update is atomic there too.

Orders of a paused blueprint stay due but are not claimed: each claim reads the paused
blueprints' slugs once (a few rows) and leaves their orders out with `workflow NOT IN
(…)`, a filter on the rows the index finds: a claim with nothing paused is the same
query as before, and one behind a paused blueprint's backlog reads past its orders.

Orders with a concurrency key stay due while an order of their workflow with the same
key runs: `concurrency_key = '' OR NOT EXISTS (a running order with that key)`. An order
without a key passes at the first term, so its claim costs what it did; one with a key
costs a probe of the unique partial index `order_running_key`, which also makes the rule
hold across the fleet: of two claims taking orders of one key at once, the second's
UPDATE fails, and that claim is made again. One claim takes at most one order per key
(later ones are dropped after the SELECT and stay due). A running order whose lease ran
out keeps its key until it is claimed again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from blueprints.models import Blueprint
from orders.models import Order
from orders.transitions import mark_claimed


@dataclass(frozen=True)
class Claim:
    order_pk: int
    token: uuid.UUID


def claimable(now: datetime) -> Q:
    """Due pending or waiting orders, and running orders whose worker's lease ran out."""
    return Q(status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now) | Q(
        status=Order.Status.RUNNING, lease_expires_at__lt=now
    )


def paused_workflows() -> list[str]:
    """The slugs of the paused blueprints, whose orders batches leave due."""
    return list(
        Blueprint.objects.filter(paused_at__isnull=False).order_by().values_list("slug", flat=True)
    )


def _unpaused(candidates: QuerySet, paused: Sequence[str]) -> QuerySet:
    return candidates.exclude(workflow__in=paused) if paused else candidates


# A claim that lost a race for a concurrency key is made again, at most this many times.
CLAIM_TRIES = 3


def key_free() -> Q:
    """No key, or no running order of the same workflow holds it."""
    holder = Order.objects.filter(
        status=Order.Status.RUNNING,
        workflow=OuterRef("workflow"),
        concurrency_key=OuterRef("concurrency_key"),
    ).exclude(concurrency_key="")
    return Q(concurrency_key="") | ~Exists(holder)


def _locked(candidates: QuerySet) -> QuerySet:
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    return candidates.values_list("pk", "workflow", "concurrency_key")


def expired_leases(now: datetime, paused: Sequence[str] = ()) -> QuerySet:
    """The pks and keys of running orders whose worker's lease ran out, oldest due first,
    but for those of the `paused` workflows. Each holds its own key, which no other order
    runs under (`order_running_key`), so it needs no key check."""
    running = Order.objects.filter(status=Order.Status.RUNNING, lease_expires_at__lt=now)
    return _locked(_unpaused(running, paused).order_by("due_at", "pk"))


def due_candidates(now: datetime, paused: Sequence[str] = ()) -> QuerySet:
    """The pks and keys of due pending and waiting orders, oldest due first, but for those
    of the `paused` workflows and those whose key a running order holds (`key_free`).

    Shaped for the partial index `order_claimable_due` (due_at, id) of pending and
    waiting orders, so it reads `limit` index entries whatever the table's size (and
    those of paused workflows it passes over).
    """
    due = Order.objects.filter(
        key_free(), status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now
    )
    return _locked(_unpaused(due, paused).order_by("due_at", "pk"))


def claim_due_orders(
    *, limit: int, lease_seconds: float, now: datetime | None = None
) -> list[Claim]:
    """Claim at most `limit` due orders, each under its own token.

    Orders a dead worker left behind come first, then due orders, oldest due first; the
    orders of paused blueprints, and those whose concurrency key is taken, are left due.
    """
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds)
    paused = paused_workflows()
    for _ in range(CLAIM_TRIES):
        try:
            with transaction.atomic():
                rows = list(expired_leases(now, paused)[:limit])
                if len(rows) < limit:
                    rows += due_candidates(now, paused)[: limit - len(rows)]
                pks = one_per_key(rows)
                if not pks:
                    return []
                tokens = {pk: uuid.uuid4() for pk in pks}
                mark_claimed(tokens, now=now, lease_until=lease_until)
        except IntegrityError:
            continue  # another claim took an order of one of these keys meanwhile
        return [Claim(pk, token) for pk, token in tokens.items()]
    return []


def work_is_due(now: datetime | None = None) -> bool:
    """Whether a claim now would find an order: the cheap read a resting lane makes once a
    second where no broker pushes its wake-ups (`core.doorbell`). One query."""
    now = now or timezone.now()
    paused = Blueprint.objects.filter(paused_at__isnull=False).values("slug")
    due = Order.objects.filter(
        key_free(), status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now
    ).exclude(workflow__in=paused)
    expired = Order.objects.filter(status=Order.Status.RUNNING, lease_expires_at__lt=now)
    return Order.objects.filter(Q(Exists(due)) | Q(Exists(expired.exclude(workflow__in=paused))))[
        :1
    ].exists()


def next_due_at(now: datetime) -> datetime | None:
    """When the soonest order that is not due yet comes due (a retry, a rest, a host's
    hold, a callback's timeout): where a resting lane's rest ends at the latest. Reads
    one entry of the index `order_claimable_due`."""
    return (
        Order.objects.filter(
            status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__gt=now
        )
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )


def one_per_key(rows: list[tuple[int, str, str]]) -> list[int]:
    """The pks of (pk, workflow, concurrency_key) rows, but for the later orders of a
    workflow and key already taken, which stay due."""
    taken: set[tuple[str, str]] = set()
    pks = []
    for pk, workflow, key in rows:
        if key:
            if (workflow, key) in taken:
                continue
            taken.add((workflow, key))
        pks.append(pk)
    return pks


def renew_leases(claims: list[Claim], *, lease_seconds: float) -> int:
    """Extend the leases this worker still holds; returns how many it still holds."""
    if not claims:
        return 0
    lease_until = timezone.now() + timedelta(seconds=lease_seconds)
    return Order.objects.filter(
        pk__in=[claim.order_pk for claim in claims],
        claim_token__in=[claim.token for claim in claims],
        status=Order.Status.RUNNING,
    ).update(lease_expires_at=lease_until)
