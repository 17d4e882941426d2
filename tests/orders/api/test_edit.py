"""PATCH /api/orders/{order_id}/: support corrects what an order was given or saved, then
reprocesses it; each edit is logged with who, why and every change."""

import pytest
from django.urls import reverse

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders.batch import run_batch
from orders.models import Order, StepLog
from orders.services import order_create
from tests.localserver import Reply
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

pytestmark = pytest.mark.django_db


def edit(client, order_id, **body):
    return client.patch(f"/api/orders/{order_id}/", body, format="json")


def test_support_sets_a_path_and_the_edit_is_logged_with_who_why_and_each_change(support, shop):
    shop_order("A-1", "failed", data={"quote": 12, "charge_id": 7})

    response = edit(
        support,
        "A-1",
        set={"payload.sku": "tee", "payload.address.zip": "10115"},
        unset=["data.quote"],
        reason="customer typed the wrong SKU",
    )

    assert response.status_code == 200, response.content
    order = Order.objects.get(order_id="A-1")
    assert order.payload == {"sku": "tee", "qty": 1, "address": {"zip": "10115"}}
    assert order.data == {"charge_id": 7}
    assert order.status == Order.Status.FAILED  # an edit does not reprocess
    (entry,) = StepLog.objects.filter(order=order, kind=StepLog.Kind.EDIT)
    assert entry.actor == support.user.username
    assert entry.request == {
        "reason": "customer typed the wrong SKU",
        "changes": [
            {"path": "payload.sku", "before": "mug", "after": "tee"},
            {"path": "payload.address", "after": {"zip": "10115"}},
            {"path": "data.quote", "before": 12},
        ],
    }
    assert response.json()["payload"]["sku"] == "tee"


def test_a_whole_payload_is_checked_against_the_pinned_input_schema(support, shop):
    shop_order("A-1", "cancelled")

    response = edit(support, "A-1", payload={"sku": 5, "qty": 0}, reason="fix")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        "payload.qty: 0 is less than the minimum of 1",
        "payload.sku: 5 is not of type 'string'",
    ]
    assert Order.objects.get(order_id="A-1").payload == {"sku": "mug", "qty": 1}
    assert not StepLog.objects.filter(kind=StepLog.Kind.EDIT).exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"set": {"payload.sku": "x"}}, "reason: This field is required."),
        ({"set": {"sku": "x"}, "reason": "r"}, "sku: a path starts with payload. or data."),
        ({"unset": ["data.nothing"], "reason": "r"}, "data.nothing: nothing is there"),
        (
            {"payload": {"sku": "x", "qty": 1}, "set": {"payload.qty": 2}, "reason": "r"},
            "payload.qty: payload is replaced whole by this edit",
        ),
        ({"set": {"payload.sku": "mug"}, "reason": "r"}, "the edit changes nothing"),
        ({"data": [1], "reason": "r"}, "data: must be an object"),
    ],
)
def test_a_malformed_edit_is_refused_naming_the_place(support, shop, body, error):
    shop_order("A-1", "failed")

    response = support.patch("/api/orders/A-1/", body, format="json")

    assert response.status_code == 400
    assert error in str(response.json())


@pytest.mark.parametrize("status", ["running", "completed"])
def test_running_and_completed_orders_cannot_be_edited(support, shop, status):
    shop_order("A-1", status)

    response = edit(support, "A-1", set={"payload.sku": "tee"}, reason="fix")

    assert response.status_code == 409
    assert f'order "A-1" is {status}' in response.json()["detail"]


def test_only_support_may_edit(integration, editor, shop):
    shop_order("A-1", "failed")

    for client in (integration, editor):
        assert edit(client, "A-1", set={"payload.sku": "x"}, reason="r").status_code == 403
    assert Order.objects.get(order_id="A-1").payload["sku"] == "mug"


def test_a_secret_in_an_edit_is_masked_in_its_log(support, shop, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_SHOP_TOKEN", "s3cret-token")
    shop_order("A-1", "waiting")

    response = edit(support, "A-1", set={"data.token": "s3cret-token"}, reason="re-key")

    assert response.status_code == 200
    entry = StepLog.objects.get(kind=StepLog.Kind.EDIT)
    assert entry.request["changes"] == [{"path": "data.token", "after": "***"}]


def test_the_order_page_shows_the_edit_in_its_timeline(support, shop, admin_client):
    order = shop_order("A-1", "failed")
    edit(support, "A-1", set={"payload.sku": "tee"}, reason="wrong SKU")

    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "<strong>Edited</strong>" in text
    assert "Reason: wrong SKU" in text
    assert "<code>payload.sku</code>" in text


@pytest.mark.django_db(transaction=True)
def test_an_edited_failed_order_reprocessed_sends_the_corrected_values(support, server):
    def carrier(request):
        if request.body["postcode"] != "10115":
            return Reply(422, {"error": f"unknown postcode {request.body['postcode']}"})
        return Reply(201, {"tracking": "TRK-1"})

    server.route("POST", "/shipments", carrier)
    api_call_save(
        definition={
            "slug": "carrier.ship",
            "name": "Ship",
            "method": "POST",
            "url": server.url + "/shipments",
            "body": {"postcode": "{{ input.address.postcode }}"},
            "save": {"tracking": "{{ response.body.tracking }}"},
        }
    )
    blueprint_save(
        definition={
            "slug": "parcel",
            "name": "Parcel",
            "steps": [{"id": "ship", "call": "carrier.ship"}],
        }
    )
    order_create(order_id="P-1", workflow="parcel", payload={"address": {"postcode": "1O115"}})
    run_batch()
    assert Order.objects.get(order_id="P-1").status == Order.Status.FAILED

    edited = edit(support, "P-1", set={"payload.address.postcode": "10115"}, reason="typo: O for 0")
    reprocessed = support.post("/api/orders/P-1/reprocess/", {"from": "failed"}, format="json")
    run_batch()

    assert (edited.status_code, reprocessed.status_code) == (200, 202)
    order = Order.objects.get(order_id="P-1")
    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"tracking": "TRK-1"}
    assert [r.body["postcode"] for r in server.requests_to("/shipments")] == ["1O115", "10115"]
