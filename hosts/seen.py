"""The hosts the engine called lately: one row per host with when it was last called,
written in one statement per flush of a worker's breaker counts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from hosts.models import SeenHost


def record_seen(hosts: Iterable[str]) -> None:
    """The hosts were called just now."""
    now = timezone.now()
    rows = [SeenHost(host=host, last_seen_at=now) for host in sorted(set(hosts)) if host]
    if rows:
        SeenHost.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["host"], update_fields=["last_seen_at"]
        )


def hosts_seen_since(since: datetime) -> dict[str, datetime]:
    """Each host called since `since`, with when it last was."""
    rows = SeenHost.objects.filter(last_seen_at__gte=since).values_list("host", "last_seen_at")
    return dict(rows)
