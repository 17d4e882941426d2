"""GET /health/: public, the database, the last batch and the due backlog."""

from datetime import timedelta
from unittest import mock

from django.db import OperationalError, connection
from django.utils import timezone

from orders.models import BatchLane, BatchRun, Order, StepLog
from tests.statemanager.fixtures import shop_order


def test_health_without_batches(client, db):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "last_batch": None,
        "due": 0,
        "due_capped_at": 10_000,
        "oldest_due_seconds": None,
        "lanes": [],
        "steps_per_minute": [0] * 15,
        "breakers": [],
        "paused_hosts": [],
    }


def test_health_shows_the_last_batch_and_the_due_orders(client, shop):
    now = timezone.now()
    BatchRun.objects.create(started_at=now - timedelta(minutes=5), orders=9)
    BatchRun.objects.create(started_at=now - timedelta(minutes=1), ended_at=now, orders=2)
    shop_order("A-1")
    shop_order("A-2", "waiting", due_at=now + timedelta(hours=1))
    shop_order("A-3", "failed", due_at=None)

    body = client.get("/health/").json()

    assert body["due"] == 1
    assert body["last_batch"]["orders"] == 2
    assert body["last_batch"]["ended_at"] is not None


def test_health_shows_the_oldest_due_order_the_lanes_running_and_the_steps_per_minute(client, shop):
    now = timezone.now()
    shop_order("A-1", due_at=now - timedelta(minutes=3))
    shop_order("A-2", due_at=now - timedelta(minutes=1))
    BatchLane.objects.create(
        number=2,
        holder="host-1:42:ab12cd34",
        lease_expires_at=now + timedelta(seconds=30),
        turn_started_at=now - timedelta(seconds=20),
        turn_orders=150,
    )
    BatchLane.objects.create(number=1, holder="dead:1:x", lease_expires_at=now - timedelta(1))
    order = Order.objects.get(order_id="A-1")
    for minutes_ago, outcome in [(0, "succeeded"), (0, "failed"), (2, "succeeded"), (20, "failed")]:
        StepLog.objects.create(
            order=order,
            run=1,
            step="charge",
            outcome=outcome,
            started_at=now - timedelta(minutes=minutes_ago),
        )
    StepLog.objects.create(order=order, run=1, step="charge", outcome="in_flight")

    body = client.get("/health/").json()

    assert body["due"] == 2
    assert 175 <= body["oldest_due_seconds"] <= 185
    assert body["lanes"] == [
        {"lane": 2, "worker": "host-1:42", "since": body["lanes"][0]["since"], "orders": 150}
    ]
    assert len(body["steps_per_minute"]) == 15
    assert sum(body["steps_per_minute"][-2:]) == 2 and sum(body["steps_per_minute"]) == 3


def test_health_is_503_when_the_database_is_unreachable(client, db):
    with mock.patch.object(
        connection, "cursor", side_effect=OperationalError("connection refused")
    ):
        response = client.get("/health/")

    assert response.status_code == 503
    assert response.json() == {"database": "unavailable"}
