"""Fixtures of the hosts' tests: a host with limits, a host whose breaker is open, orders
held for a host; and the admin's users and client and the `shop` blueprint (the API tests
take the token clients of tests.statemanager.fixtures, which win in their module)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host
from orders.models import Order
from tests.admin_fixtures import (  # noqa: F401
    _fast_passwords,
    admin_client_for,
    editor,
    superuser,
    support,
)
from tests.statemanager.fixtures import shop, shop_order  # noqa: F401


@pytest.fixture
def partner(db) -> Host:
    return Host.objects.create(host="api.partner.example", rate_per_second=5, max_concurrent=3)


@pytest.fixture
def tripped(db) -> Host:
    """A host whose breaker opened ten minutes ago, 75% of its calls failing."""
    host = Host.objects.create(host="down.partner.example")
    Host.objects.filter(pk=host.pk).update(
        breaker_state="open",
        breaker_since=timezone.now() - timedelta(minutes=10),
        breaker_failure_rate=0.75,
    )
    host.refresh_from_db()
    return host


def held_order(order_id: str, host: str, kind: str = "paused") -> Order:
    """A waiting order of `shop` that the gate of `host` held for `kind`, due in 5 minutes."""
    state = {"held": {"host": host, "kind": kind, "count": 1, "reason": f"host {host}: {kind}"}}
    due_at = timezone.now() + timedelta(minutes=5)
    return shop_order(order_id, "waiting", due_at=due_at, step_state=state)
