"""GET /health/: public, the database, the last batch and the due backlog."""

from datetime import timedelta
from unittest import mock

from django.db import OperationalError, connection
from django.utils import timezone

from orders.models import BatchRun
from tests.statemanager.fixtures import shop_order


def test_health_without_batches(client, db):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "last_batch": None, "due": 0}


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


def test_health_is_503_when_the_database_is_unreachable(client, db):
    with mock.patch.object(
        connection, "cursor", side_effect=OperationalError("connection refused")
    ):
        response = client.get("/health/")

    assert response.status_code == 503
    assert response.json() == {"database": "unavailable"}
