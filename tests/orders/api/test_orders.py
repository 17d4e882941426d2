"""GET /api/orders/ and /api/orders/{order_id}/: filters, pagination, the log."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders.batch import run_batch
from orders.models import Order, StepLog
from tests.localserver import LocalServer, Reply
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order


def order_ids(response) -> list[str]:
    return [order["order_id"] for order in response.json()["results"]]


@pytest.fixture
def orders(shop):
    now = timezone.now()
    shop_order("A-1", "failed", created_at=now - timedelta(days=3))
    shop_order("A-2", "completed", created_at=now - timedelta(days=2))
    shop_order("B-3", "failed", created_at=now - timedelta(days=1))


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=failed", ["B-3", "A-1"]),
        ("status=failed&status=completed", ["B-3", "A-2", "A-1"]),
        ("workflow=shop&search=A-", ["A-2", "A-1"]),
        ("search=3", ["B-3"]),
        ("ordering=created_at", ["A-1", "A-2", "B-3"]),
        ("ordering=-order_id", ["B-3", "A-2", "A-1"]),
        ("workflow=other", []),
    ],
)
def test_list_filters(support, orders, query, expected):
    response = support.get(f"/api/orders/?{query}")

    assert response.status_code == 200
    assert order_ids(response) == expected


def test_list_filters_by_creation_dates(support, orders):
    now = timezone.now()
    after = (now - timedelta(days=2, hours=12)).isoformat()
    before = (now - timedelta(days=1, hours=12)).isoformat()

    response = support.get("/api/orders/", {"created_after": after, "created_before": before})

    assert order_ids(response) == ["A-2"]


def test_list_refuses_an_unknown_status(support, orders):
    response = support.get("/api/orders/?status=lost")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("status: ")


def test_list_is_paginated(support, orders):
    first = support.get("/api/orders/?page_size=2").json()
    second = support.get(first["next"]).json()

    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert [order["order_id"] for order in second["results"]] == ["A-1"]


def test_list_query_count_does_not_grow_with_orders(support, shop):
    for number in range(3):
        shop_order(f"A-{number}")
    with CaptureQueriesContext(connection) as few:
        support.get("/api/orders/")
    for number in range(3, 30):
        shop_order(f"A-{number}")

    with CaptureQueriesContext(connection) as many:
        response = support.get("/api/orders/")

    assert len(response.json()["results"]) == 30
    assert len(many) == len(few)


def test_list_shows_the_pinned_blueprint_version(support, shop):
    shop_order("A-1")

    order = support.get("/api/orders/").json()["results"][0]

    assert order["workflow"] == "shop"
    assert order["blueprint_version"] == 1


def test_detail_of_an_unknown_order_is_404(support, shop):
    assert support.get("/api/orders/nope/").status_code == 404


def test_detail_finds_order_ids_with_dots(support, shop):
    shop_order("shop.2024.7")

    assert support.get("/api/orders/shop.2024.7/").json()["order_id"] == "shop.2024.7"


def test_detail_log_lists_every_entry_oldest_first_in_the_contract_shape(support, shop):
    order = shop_order("A-1", "failed", error='step "charge": status 500')
    request = {"method": "POST", "url": "http://127.0.0.1:9/charge", "headers": {}, "body": {}}
    for attempt in (1, 2):
        StepLog.objects.create(
            order=order,
            run=1,
            step="charge",
            attempt=attempt,
            duration_ms=12,
            request=request,
            response={"status": 500, "headers": {}, "body": "down"},
            outcome="failed",
            error="status 500",
        )
    StepLog.objects.create(
        order=order, run=2, step="charge", kind="reprocess", outcome="requested", actor="ann"
    )

    detail = support.get("/api/orders/A-1/").json()

    assert {key: detail[key] for key in ("status", "current_step", "data", "error", "run")} == {
        "status": "failed",
        "current_step": "charge",
        "data": {},
        "error": 'step "charge": status 500',
        "run": 1,
    }
    first = detail["log"][0]
    assert set(first) >= {
        "run", "step", "attempt", "started_at", "duration_ms",
        "request", "response", "outcome", "error", "kind", "actor",
    }  # fmt: skip
    assert (first["attempt"], first["request"], first["response"]["status"]) == (1, request, 500)
    assert [(e["kind"], e["attempt"], e["actor"]) for e in detail["log"]] == [
        ("attempt", 1, ""),
        ("attempt", 2, ""),
        ("reprocess", 0, "ann"),
    ]


@pytest.fixture
def server():
    local = LocalServer()
    yield local
    local.stop()


@pytest.mark.django_db(transaction=True)
def test_detail_of_a_processed_order_never_shows_a_secret(
    support, integration, server, monkeypatch
):
    monkeypatch.setenv("STATE_MANAGER_SECRET_SHOP_TOKEN", "s3cret-value")
    server.route("POST", "/charge", Reply(200, {"echo": "s3cret-value", "id": 7}))
    api_call_save(
        definition={
            "slug": "shop.charge",
            "name": "Charge",
            "method": "POST",
            "url": f"{server.url}/charge",
            "headers": {"Authorization": "Bearer {{ secrets.SHOP_TOKEN }}"},
            "body": {"token": "{{ secrets.SHOP_TOKEN }}"},
            "save": {"charge_id": "{{ response.body.id }}"},
        }
    )
    blueprint_save(
        definition={
            "slug": "shop",
            "name": "Shop",
            "steps": [{"id": "charge", "call": "shop.charge"}],
        }
    )
    integration.post(
        "/api/orders/", {"order_id": "A-1", "workflow": "shop", "payload": {}}, format="json"
    )

    run_batch()
    response = support.get("/api/orders/A-1/")

    assert server.requests_to("/charge")[0].headers["Authorization"] == "Bearer s3cret-value"
    assert response.json()["status"] == "completed"
    assert response.json()["data"] == {"charge_id": 7}
    assert response.json()["log"][0]["request"]["url"] == f"{server.url}/charge"
    assert "s3cret-value" not in response.content.decode()


def test_orders_of_every_status_are_listed(support, shop):
    for status in Order.Status.values:
        shop_order(f"o-{status}", status)

    response = support.get("/api/orders/")

    assert sorted(order["status"] for order in response.json()["results"]) == sorted(
        Order.Status.values
    )
