"""Exclusive claims on due orders, held by leases that the claiming worker renews.

PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`, so workers on many machines claim
disjoint orders without waiting on each other. SQLite: the claim runs in one
`BEGIN IMMEDIATE` transaction (the project's SQLite setting), which serialises
writers, so the select-then-update is atomic there too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case, Q, UUIDField, Value, When
from django.utils import timezone

from orders.models import Order


@dataclass(frozen=True)
class Claim:
    order_pk: int
    token: uuid.UUID


def claimable(now: datetime) -> Q:
    """Due pending or waiting orders, and running orders whose worker's lease ran out."""
    return Q(status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now) | Q(
        status=Order.Status.RUNNING, lease_expires_at__lt=now
    )


def claim_due_orders(
    *, limit: int, lease_seconds: float, now: datetime | None = None
) -> list[Claim]:
    """Claim at most `limit` due orders, oldest due first, each under its own token."""
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds)
    with transaction.atomic():
        candidates = Order.objects.filter(claimable(now)).order_by("due_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        pks = list(candidates.values_list("pk", flat=True)[:limit])
        if not pks:
            return []
        tokens = {pk: uuid.uuid4() for pk in pks}
        # One statement for the whole claim, each row getting its own token.
        updated = Order.objects.filter(claimable(now), pk__in=pks).update(
            status=Order.Status.RUNNING,
            claim_token=Case(
                *(When(pk=pk, then=Value(token)) for pk, token in tokens.items()),
                output_field=UUIDField(),
            ),
            lease_expires_at=lease_until,
            updated_at=now,
        )
        if updated != len(pks):
            held = set(
                Order.objects.filter(pk__in=pks, claim_token__in=tokens.values()).values_list(
                    "pk", flat=True
                )
            )
            tokens = {pk: token for pk, token in tokens.items() if pk in held}
    return [Claim(pk, token) for pk, token in tokens.items()]


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
