"""Reads about outbound hosts, for the dashboard and /health/."""

from __future__ import annotations

from django.db.models import Q

from hosts.models import Host


def hosts_holding_orders() -> list[Host]:
    """The hosts that hold every order calling them, whatever their limits: paused, or
    their circuit breaker not closed; by name. One query over the hosts table (a row per
    partner host, few)."""
    return list(
        Host.objects.filter(Q(paused_at__isnull=False) | ~Q(breaker_state=Host.Breaker.CLOSED))
    )
