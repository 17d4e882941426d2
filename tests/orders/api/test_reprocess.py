"""POST /api/orders/{id}/reprocess/, /api/orders/reprocess/ and /api/orders/{id}/cancel/."""

import pytest

from orders.models import Callback, Order, StepLog
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

FAILED_AT_SHIP = {
    "error": 'step "ship": status 500',
    "current_step": "ship",
    "data": {"charge_id": 7, "note": "after"},
    "resume_point": {"step": "ship", "data": {"charge_id": 7}},
}


def counts(response) -> tuple[int, int]:
    """A bulk answer's counts (it also names the job that did the work)."""
    body = response.json()
    return body["count"], body["skipped"]


# One order in each status, by id.
STATUSES = {
    "P": "pending",
    "R": "running",
    "W": "waiting",
    "C": "completed",
    "F": "failed",
    "X": "cancelled",
}


def reprocess(client, order_id, **body):
    return client.post(f"/api/orders/{order_id}/reprocess/", body, format="json")


def test_reprocess_from_failed_resumes_at_the_failed_step_with_its_data(support, shop):
    shop_order("A-1", "failed", **FAILED_AT_SHIP)

    response = reprocess(support, "A-1")

    assert response.status_code == 202
    order = Order.objects.get(order_id="A-1")
    assert (order.status, order.current_step, order.data) == ("pending", "ship", {"charge_id": 7})
    assert (order.run, order.error, order.resume_point, order.finished_at) == (2, "", {}, None)
    assert order.due_at is not None


def test_reprocess_from_start_begins_a_new_run_with_empty_data(support, shop):
    shop_order("A-1", "failed", **FAILED_AT_SHIP)

    response = reprocess(support, "A-1", **{"from": "start"})

    assert response.json()["current_step"] == "charge"
    assert response.json()["data"] == {}
    assert response.json()["run"] == 2


def test_reprocess_is_logged_with_who_asked(support, shop):
    shop_order("A-1", "failed", **FAILED_AT_SHIP)

    log = reprocess(support, "A-1", **{"from": "start"}).json()["log"]

    assert [(e["kind"], e["run"], e["step"], e["outcome"]) for e in log] == [
        ("reprocess", 2, "charge", "requested")
    ]
    assert log[0]["actor"] == support.user.username


def test_running_order_cannot_be_reprocessed(support, shop):
    shop_order("A-1", "running")

    response = reprocess(support, "A-1")

    assert response.status_code == 409
    assert Order.objects.get(order_id="A-1").run == 1


@pytest.mark.parametrize("body", [{"from": "two words"}, {"from": ""}, {"version": "newest"}])
def test_bad_from_or_version_is_400(support, shop, body):
    shop_order("A-1", "failed")

    response = reprocess(support, "A-1", **body)

    assert response.status_code == 400
    assert response.json()["errors"][0].split(":")[0] in ("from", "version")


@pytest.mark.parametrize("status", ["pending", "waiting"])
def test_reprocess_of_a_pending_or_waiting_order_is_409_and_changes_nothing(support, shop, status):
    order = shop_order("A-1", status)
    Callback.objects.create(
        token="t1", order=order, run=1, step="charge", expires_at=order.created_at
    )

    response = reprocess(support, "A-1", **{"from": "start"})

    assert response.status_code == 409
    assert f"is {status}: cancel it first" in response.json()["detail"]
    order.refresh_from_db()
    assert (order.status, order.run) == (status, 1)
    assert Callback.objects.get(token="t1").status == "waiting"


def test_reprocess_of_a_cancelled_order_ends_the_wait_of_its_callback(support, shop):
    order = shop_order("A-1", "cancelled")
    Callback.objects.create(
        token="t1", order=order, run=1, step="charge", expires_at=order.created_at
    )

    assert reprocess(support, "A-1").status_code == 202
    assert Callback.objects.get(token="t1").status == "expired"


def test_a_completed_order_is_not_reprocessed_from_the_failed_step(support, shop):
    shop_order("A-1", "completed", current_step="ship")

    response = reprocess(support, "A-1", **{"from": "failed"})

    assert response.status_code == 409
    assert "only a reprocess from the start" in response.json()["detail"]
    assert Order.objects.get(order_id="A-1").status == "completed"
    assert not StepLog.objects.filter(kind="reprocess").exists()


def test_a_completed_order_named_alone_is_reprocessed_from_the_start(support, shop):
    shop_order("A-1", "completed", current_step="ship")

    response = reprocess(support, "A-1", **{"from": "start"})

    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert response.json()["current_step"] == "charge"


def test_bulk_reprocess_reprocesses_failed_and_cancelled_and_skips_the_rest(support, shop):
    for order_id, status in STATUSES.items():
        shop_order(order_id, status)

    response = support.post(
        "/api/orders/reprocess/", {"order_ids": list(STATUSES), "from": "failed"}, format="json"
    )

    assert response.status_code == 202
    assert counts(response) == (2, 4)
    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert statuses == {**STATUSES, "F": "pending", "X": "pending"}


@pytest.mark.parametrize(
    "body, reprocessed",
    [
        ({"from": "start"}, {"F", "X"}),
        ({"from": "failed", "include_completed": True}, {"F", "X"}),
        ({"from": "start", "include_completed": True}, {"F", "X", "C"}),
    ],
)
def test_bulk_reprocess_includes_completed_orders_only_from_the_start_when_asked(
    support, shop, body, reprocessed
):
    for order_id, status in STATUSES.items():
        shop_order(order_id, status)

    response = support.post(
        "/api/orders/reprocess/", {"order_ids": list(STATUSES), **body}, format="json"
    )

    assert counts(response) == (len(reprocessed), 6 - len(reprocessed))
    assert set(Order.objects.filter(run=2).values_list("order_id", flat=True)) == reprocessed


def test_bulk_reprocess_by_filters(support, shop):
    shop_order("A-1", "failed")
    shop_order("A-2", "completed")
    shop_order("B-1", "failed")

    response = support.post(
        "/api/orders/reprocess/",
        {"status": "failed", "search": "A-", "from": "start"},
        format="json",
    )

    assert counts(response) == (1, 0)
    assert Order.objects.get(order_id="A-1").status == "pending"
    assert Order.objects.get(order_id="B-1").status == "failed"


def test_bulk_reprocess_refuses_an_empty_selection(support, shop):
    shop_order("A-1", "failed")

    response = support.post("/api/orders/reprocess/", {"from": "start"}, format="json")

    assert response.status_code == 400
    assert "order_ids or at least one filter" in response.json()["errors"][0]
    assert Order.objects.get(order_id="A-1").status == "failed"


def test_bulk_reprocess_refuses_filters_that_narrow_nothing(support, shop):
    shop_order("A-1", "failed")

    response = support.post(
        "/api/orders/reprocess/", {"status": [], "from": "start"}, format="json"
    )

    assert response.status_code == 400
    assert "order_ids or at least one filter" in response.json()["errors"][0]
    assert Order.objects.get(order_id="A-1").status == "failed"


def test_bulk_reprocess_refuses_bad_filters(support, shop):
    response = support.post("/api/orders/reprocess/", {"created_after": "yesterday"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("created_after: ")


@pytest.mark.parametrize("status", ["pending", "waiting", "failed"])
def test_cancel_stops_a_pending_waiting_or_failed_order_at_once(support, shop, status):
    shop_order("A-1", status)

    response = support.post("/api/orders/A-1/cancel/")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert response.json()["due_at"] is None
    assert [(e["kind"], e["actor"]) for e in response.json()["log"]] == [
        ("cancel", support.user.username)
    ]


def test_cancel_asks_a_running_order_to_stop_after_its_step(support, shop):
    shop_order("A-1", "running")

    response = support.post("/api/orders/A-1/cancel/")

    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_cancel_of_a_finished_order_is_409(support, shop, status):
    shop_order("A-1", status)

    response = support.post("/api/orders/A-1/cancel/")

    assert response.status_code == 409
    assert Order.objects.get(order_id="A-1").status == status


def test_reprocess_of_an_unknown_order_is_404(support, shop):
    assert reprocess(support, "nope").status_code == 404


def test_order_keeps_its_version_until_reprocessed_on_the_latest(
    integration, editor, support, shop
):
    integration.post(
        "/api/orders/",
        {"order_id": "A-1", "workflow": "shop", "payload": {"sku": "mug", "qty": 1}},
        format="json",
    )
    steps = [{"id": "pack", "call": "shop.charge"}, *shop.steps]
    edited = editor.patch("/api/blueprints/shop/", {"steps": steps}, format="json")
    assert edited.status_code == 200
    pinned = support.get("/api/orders/A-1/").json()
    Order.objects.filter(order_id="A-1").update(status="failed")

    reprocessed = reprocess(support, "A-1", **{"from": "start", "version": "latest"}).json()

    assert pinned["blueprint_version"] == 1
    order = Order.objects.get(order_id="A-1")
    assert reprocessed["blueprint_version"] == 2
    assert reprocessed["current_step"] == "pack"
    assert order.snapshot.definition["blueprint"]["steps"][0]["id"] == "pack"


def test_reprocess_on_the_pinned_version_keeps_the_old_snapshot(editor, support, shop):
    order = shop_order("A-1", "failed")
    editor.patch("/api/blueprints/shop/", {"name": "Shop 2"}, format="json")

    reprocessed = reprocess(support, "A-1", **{"from": "start"}).json()

    assert reprocessed["blueprint_version"] == 1
    assert Order.objects.get(order_id="A-1").snapshot_id == order.snapshot_id


def test_reprocess_on_the_latest_refuses_a_step_it_no_longer_has(editor, support, shop):
    shop_order("A-1", "failed", current_step="ship")
    editor.patch(
        "/api/blueprints/shop/", {"steps": [{"id": "charge", "call": "shop.charge"}]}, format="json"
    )

    response = reprocess(support, "A-1", version="latest")

    assert response.status_code == 400
    assert 'step "ship" is not in the latest version' in response.json()["errors"][0]


def test_a_from_naming_no_step_of_the_pinned_version_is_a_409_naming_it(support, shop):
    shop_order("A-1", "failed")

    response = reprocess(support, "A-1", **{"from": "middle"})

    assert response.status_code == 409
    assert response.json()["detail"] == 'step "middle" is not in the pinned version of this order'
