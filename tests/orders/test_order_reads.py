"""Reads that cost the same at a million orders: the list's count, the order-id search, and
the capped counts of the dashboard and /health/."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import selectors
from orders.filters import orders_matching
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

pytestmark = pytest.mark.django_db


def order_ids(response) -> list[str]:
    return [order["order_id"] for order in response.json()["results"]]


def order_queries(captured) -> list[str]:
    return [query["sql"] for query in captured if "orders_order" in query["sql"]]


def many_orders(count: int) -> None:
    """`count` completed orders ORD-00001 … in one statement (PostgreSQL), beside one made
    by the webhook's service."""
    first = shop_order("first")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_order (
                order_id, workflow, snapshot_id, payload, data, status, current_step, error,
                failed_step,
                run, attempt, steps_in_run, step_state, resume_point, cancel_requested,
                created_at, updated_at
            )
            SELECT 'ORD-' || lpad(g::text, 5, '0'), workflow, snapshot_id, payload, data,
                   'completed', '', '', '', 1, 0, 0, '{}', '{}', false,
                   created_at - interval '1 second' * g, updated_at
            FROM orders_order, generate_series(1, %s) AS g
            WHERE id = %s
            """,
            [count, first.pk],
        )


# The API list.


def test_a_filtered_list_is_counted_without_distinct(support, shop):
    shop_order("A-1", "failed")
    shop_order("A-2", "cancelled")
    shop_order("A-3", "completed")

    with CaptureQueriesContext(connection) as captured:
        response = support.get("/api/orders/?status=failed&status=cancelled")

    assert response.json()["count"] == 2
    counts = [sql for sql in order_queries(captured) if "COUNT(" in sql.upper()]
    assert len(counts) == 1
    assert not any("DISTINCT" in sql.upper() for sql in order_queries(captured))


def test_search_finds_any_part_of_the_order_id_in_any_case(support, shop):
    shop_order("Shop-1001")
    shop_order("shop-2002")
    shop_order("B-1001")

    assert order_ids(support.get("/api/orders/?search=SHOP")) == ["shop-2002", "Shop-1001"]
    assert order_ids(support.get("/api/orders/?search=op-10")) == ["Shop-1001"]
    assert order_ids(support.get("/api/orders/?search=%20b-1%20")) == ["B-1001"]


@pytest.mark.postgres
def test_search_reads_the_trigram_index_on_postgresql(shop):
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's (run with DATABASE_URL=postgres://...)")
    many_orders(50_000)
    queryset = orders_matching({"search": "01234"})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
        for sql, params in (
            queryset.order_by().values("pk").query.sql_with_params(),
            queryset[:50].query.sql_with_params(),
        ):
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "order_id_trgm" in plan, plan
    assert [order.order_id for order in queryset] == ["ORD-01234"]


@pytest.mark.postgres
def test_the_whole_list_is_counted_by_postgresqls_estimate(support, shop, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the row estimate is PostgreSQL's (run with DATABASE_URL=postgres://...)")
    for number in range(3):
        shop_order(f"A-{number}", "failed" if number else "completed")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    monkeypatch.setattr(selectors, "ESTIMATE_FROM_ROWS", 1)

    with CaptureQueriesContext(connection) as whole:
        assert support.get("/api/orders/").json()["count"] == 3
    with CaptureQueriesContext(connection) as filtered:
        assert support.get("/api/orders/?status=failed").json()["count"] == 2

    assert not any("COUNT(" in sql.upper() for sql in order_queries(whole))
    assert any("COUNT(" in sql.upper() for sql in order_queries(filtered))


# The counts of the dashboard and /health/.


def test_due_count_counts_due_orders_and_those_of_dead_workers(shop):
    now = timezone.now()
    shop_order("due-1")
    shop_order("due-2", "waiting", due_at=now - timedelta(minutes=1))
    shop_order("later", "waiting", due_at=now + timedelta(hours=1))
    shop_order("dead", "running", lease_expires_at=now - timedelta(minutes=1))
    shop_order("alive", "running", lease_expires_at=now + timedelta(minutes=1))
    shop_order("done", "failed", due_at=None)

    assert selectors.orders_due_count() == 3


def test_due_count_stops_at_the_cap(shop, monkeypatch):
    now = timezone.now()
    for number in range(3):
        shop_order(f"due-{number}")
    shop_order("dead", "running", lease_expires_at=now - timedelta(minutes=1))

    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    assert selectors.orders_due_count() == 2
    monkeypatch.setattr(selectors, "COUNT_CAP", 4)
    assert selectors.orders_due_count() == 4
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    assert selectors.orders_due_count() == 4


def test_status_counts_stop_at_the_cap(shop, monkeypatch):
    for number in range(3):
        shop_order(f"F-{number}", "failed")
    shop_order("C-1", "completed")
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)

    counts = selectors.order_counts_by_status()

    assert counts == {
        "pending": 0,
        "running": 0,
        "waiting": 0,
        "completed": 1,
        "failed": 2,
        "cancelled": 0,
    }


def test_oldest_due_at_is_the_longest_waiting_due_order(shop):
    now = timezone.now()
    assert selectors.oldest_due_at(now) is None
    shop_order("new", due_at=now - timedelta(minutes=5))
    shop_order("old", "waiting", due_at=now - timedelta(hours=2))
    shop_order("later", "waiting", due_at=now + timedelta(hours=3))
    shop_order("done", "failed", due_at=now - timedelta(days=2))

    assert selectors.oldest_due_at(now) == now - timedelta(hours=2)


def test_orders_total_is_exact_on_a_small_table(shop):
    for number in range(3):
        shop_order(f"A-{number}")

    assert selectors.orders_total() == (3, False)
