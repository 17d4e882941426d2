"""orders.services: the races and bounds the API tests cannot see."""

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from blueprints import services as blueprint_services
from orders import intake, services
from orders.models import Order, StepLog
from orders.services import orders_cancel, orders_reprocess
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

PAYLOAD = {"sku": "mug", "qty": 1}


@pytest.mark.django_db(transaction=True)
def test_two_identical_posts_at_once_make_one_order(shop, monkeypatch):
    both_checked = threading.Barrier(2, timeout=10)
    snapshot = intake.workflow_snapshot

    def snapshot_after_both_checked(**kwargs):
        try:
            both_checked.wait()  # both posts have found no order A-1 before either inserts
        except threading.BrokenBarrierError:
            pass  # the other found the intake cached: the insert race is still run
        return snapshot(**kwargs)

    monkeypatch.setattr(intake, "workflow_snapshot", snapshot_after_both_checked)
    results = []

    def post():
        try:
            results.append(services.order_create(order_id="A-1", workflow="shop", payload=PAYLOAD))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(created for _, created in results) == [False, True]
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_racing_post_with_another_payload_is_a_conflict(shop, monkeypatch):
    original = intake.workflow_snapshot

    def another_request_wins(**kwargs):
        snapshot = original(**kwargs)
        Order.objects.create(
            order_id="A-1", workflow="shop", snapshot=snapshot, payload={"sku": "cup", "qty": 1}
        )
        return snapshot

    monkeypatch.setattr(intake, "workflow_snapshot", another_request_wins)

    with pytest.raises(services.OrderConflict):
        services.order_create(order_id="A-1", workflow="shop", payload=PAYLOAD)


def test_workflow_without_input_schema_takes_any_payload(db, shop):
    shop.input_schema = None
    shop.save()

    order, created = services.order_create(order_id="A-1", workflow="shop", payload=[1, "x"])

    assert created and order.payload == [1, "x"]


def reprocess_queries(count: int) -> int:
    """Queries of a bulk reprocess of the first `count` orders, in chunks of 20."""
    Order.objects.update(status="failed")
    with CaptureQueriesContext(connection) as queries:
        result = orders_reprocess(orders=Order.objects.all()[:count], start_from="start", actor="t")
    assert result.count == count
    return len(queries)


def test_bulk_reprocess_queries_depend_on_chunks_not_orders(shop, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 20)
    for number in range(60):
        shop_order(f"A-{number}", "failed")

    five, twenty, forty, sixty = (reprocess_queries(n) for n in (5, 20, 40, 60))

    assert five == twenty
    assert sixty - forty == forty - twenty


def test_bulk_reprocess_walks_the_selection_in_chunks(shop, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 4)
    for number in range(10):
        shop_order(f"A-{number}", "failed")

    result = orders_reprocess(orders=Order.objects.filter(status="failed"), actor="t")

    assert (result.count, result.skipped) == (10, 0)
    assert set(Order.objects.values_list("status", flat=True)) == {"pending"}
    assert StepLog.objects.filter(kind="reprocess", actor="t").count() == 10


def test_bulk_reprocess_skips_an_order_claimed_meanwhile(shop, monkeypatch):
    shop_order("A-1", "failed")
    shop_order("A-2", "failed")
    locked = services._locked

    def claimed_before_the_lock(pks):
        Order.objects.filter(order_id="A-1").update(status="running")
        return locked(pks)

    monkeypatch.setattr(services, "_locked", claimed_before_the_lock)

    result = orders_reprocess(orders=Order.objects.all(), actor="t")

    assert (result.count, result.skipped) == (1, 1)
    assert Order.objects.get(order_id="A-1").run == 1
    assert not StepLog.objects.filter(order__order_id="A-1").exists()


def test_bulk_reprocess_on_latest_skips_orders_whose_step_is_gone(shop):
    shop_order("A-1", "failed", current_step="ship")
    shop_order("A-2", "failed", current_step="charge")
    blueprint_services.blueprint_save(
        definition={
            "slug": "shop",
            "name": "Shop",
            "steps": [{"id": "charge", "call": "shop.charge"}],
        }
    )

    result = orders_reprocess(orders=Order.objects.all(), version="latest", actor="t")

    assert (result.count, result.skipped) == (1, 1)
    assert Order.objects.get(order_id="A-2").snapshot.blueprint_version == 2


def test_bulk_cancel(shop):
    for status in Order.Status.values:
        shop_order(status, status)

    result = orders_cancel(orders=Order.objects.all(), actor="ann")

    assert (result.count, result.skipped) == (4, 2)
    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert statuses == {
        "pending": "cancelled",
        "waiting": "cancelled",
        "failed": "cancelled",
        "running": "running",
        "completed": "completed",
        "cancelled": "cancelled",
    }
    assert Order.objects.get(order_id="running").cancel_requested
    assert StepLog.objects.filter(kind="cancel", actor="ann").count() == 4
