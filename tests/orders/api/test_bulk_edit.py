"""POST /api/orders/edit/preview/ and /api/orders/edit/: one edit over a selection, preview
first, then a frozen bulk job, optionally followed by a reprocess of the edited orders."""

import pytest
from django.db import connection

from orders.jobs import job_run
from orders.models import BulkJob, Order, StepLog
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

pytestmark = pytest.mark.django_db

FIX_SKU = {"set": {"payload.sku": "tee"}, "reason": "the shop sent the old SKU"}


def some_orders():
    for order_id, status in [
        ("A", "failed"),
        ("B", "failed"),
        ("C", "running"),
        ("D", "completed"),
    ]:
        shop_order(order_id, status)


def test_the_preview_says_what_would_change_and_why_the_rest_would_not_and_writes_nothing(
    support, shop
):
    some_orders()

    response = support.post(
        "/api/orders/edit/preview/", {"workflow": "shop", **FIX_SKU}, format="json"
    )

    assert response.status_code == 200, response.content
    preview = response.json()
    assert (preview["total"], preview["change"], preview["refused"]) == (4, 2, 2)
    causes = {(c["cause"].split(":")[0], c["count"], tuple(c["first"])) for c in preview["causes"]}
    assert causes == {("running", 1, ("C",)), ("completed", 1, ("D",))}
    assert preview["diffs"] == [
        {"order_id": "A", "changes": [{"path": "payload.sku", "before": "mug", "after": "tee"}]},
        {"order_id": "B", "changes": [{"path": "payload.sku", "before": "mug", "after": "tee"}]},
    ]
    assert set(Order.objects.values_list("payload__sku", flat=True)) == {"mug"}
    assert not StepLog.objects.filter(kind=StepLog.Kind.EDIT).exists()


def test_the_job_edits_what_the_preview_said_and_then_reprocesses_the_edited(support, shop):
    some_orders()
    body = {
        "workflow": "shop",
        **FIX_SKU,
        "then_reprocess": {"from": "failed", "version": "pinned"},
    }

    response = support.post("/api/orders/edit/", body, format="json")

    assert response.status_code == 202, response.content
    assert (response.json()["count"], response.json()["skipped"]) == (2, 2)
    job = BulkJob.objects.get()
    assert (job.kind, job.status, job.options["reason"]) == ("edit", "done", FIX_SKU["reason"])
    edited = Order.objects.filter(order_id__in=["A", "B"])
    assert {(o.payload["sku"], o.status, o.run) for o in edited} == {("tee", "pending", 2)}
    assert Order.objects.get(order_id="C").payload["sku"] == "mug"
    entries = StepLog.objects.filter(kind=StepLog.Kind.EDIT)
    assert sorted(e.order.order_id for e in entries) == ["A", "B"]
    assert {e.actor for e in entries} == {support.user.username}


def test_an_edit_the_input_schema_refuses_changes_nothing_and_says_why(support, shop):
    some_orders()
    bad = {"workflow": "shop", "set": {"payload.qty": 0}, "reason": "r"}

    preview = support.post("/api/orders/edit/preview/", bad, format="json").json()
    job = support.post("/api/orders/edit/", bad, format="json").json()

    assert preview["change"] == 0
    assert "payload.qty: 0 is less than the minimum of 1" in preview["causes"][0]["cause"]
    assert (job["count"], job["skipped"]) == (0, 4)
    assert set(Order.objects.values_list("payload__qty", flat=True)) == {1}


def test_a_bulk_edit_needs_a_reason_a_selection_and_the_edit_permission(support, editor, shop):
    no_reason = {"workflow": "shop", "set": {"payload.sku": "x"}}
    everything = FIX_SKU  # no selection: every order

    assert support.post("/api/orders/edit/", no_reason, format="json").status_code == 400
    assert support.post("/api/orders/edit/preview/", everything, format="json").status_code == 400
    preview = editor.post(
        "/api/orders/edit/preview/", {"workflow": "shop", **FIX_SKU}, format="json"
    )
    assert preview.status_code == 403


def test_preview_and_job_agree_on_a_large_selection(support, shop):
    count = 10_000 if connection.vendor == "postgresql" else 2_000
    template = shop_order("T-0", "failed")
    statuses = ["failed", "cancelled", "pending", "waiting", "running", "completed"]
    Order.objects.bulk_create(
        Order(
            order_id=f"T-{i}",
            workflow="shop",
            snapshot_id=template.snapshot_id,
            payload={"sku": "mug", "qty": 1 if i % 7 else 0},  # every 7th breaks the schema
            status=statuses[i % len(statuses)],
            current_step="charge",
        )
        for i in range(1, count)
    )
    body = {"workflow": "shop", "set": {"payload.note": "checked"}, "reason": "audit"}

    preview = support.post("/api/orders/edit/preview/", body, format="json").json()
    job = support.post("/api/orders/edit/", body, format="json").json()

    assert preview["total"] == count
    assert 0 < preview["change"] < count
    assert (job["job"]["total"], job["job"]["status"]) == (count, "queued")  # a django-q2 task
    done = job_run(BulkJob.objects.get(pk=job["job"]["id"]))
    assert (done.done, done.skipped) == (preview["change"], preview["refused"])
    assert Order.objects.filter(payload__note="checked").count() == preview["change"]
