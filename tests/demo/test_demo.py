"""The demo: its definitions import, and the fake APIs drive every branch to its end."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from apicalls.models import ApiCall
from blueprints.models import Blueprint
from blueprints.services import definitions_import
from demo.fake_apis import FakeApis
from orders.batch import run_batch
from orders.models import Order
from orders.services import order_create

pytestmark = pytest.mark.django_db(transaction=True)

DEFINITIONS = settings.BASE_DIR / "demo" / "definitions.json"
FINISHED = {Order.Status.COMPLETED, Order.Status.FAILED, Order.Status.CANCELLED}


@pytest.fixture
def demo_definitions():
    return definitions_import(document=json.loads(DEFINITIONS.read_text()))


@pytest.fixture
def fake_apis(monkeypatch):
    server = FakeApis("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_API_URL", server.url)
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_PAYMENTS_CLIENT_ID", "demo-shop")
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_PAYMENTS_CLIENT_SECRET", "demo-client-secret")
    yield server
    server.shutdown()
    server.server_close()


def run_until_finished(*order_ids: str, seconds: float = 30) -> list[Order]:
    deadline = time.monotonic() + seconds
    while True:
        run_batch()
        orders = list(Order.objects.filter(order_id__in=order_ids).order_by("order_id"))
        if all(order.status in FINISHED for order in orders) or time.monotonic() > deadline:
            return orders
        time.sleep(0.2)


def demo_order(order_id: str, **payload) -> Order:
    order, created = order_create(order_id=order_id, workflow="ecommerce-order", payload=payload)
    assert created
    return order


def test_demo_definitions_import_with_every_api_call_the_blueprint_uses(demo_definitions):
    assert Blueprint.objects.filter(slug="ecommerce-order").exists()
    assert set(ApiCall.objects.values_list("slug", flat=True)) == {
        "shop.quote",
        "payments.charge",
        "shipping.create",
        "mail.send",
        "ops.ticket",
    }


def test_demo_blueprint_is_the_contract_example(demo_definitions):
    document = json.loads(DEFINITIONS.read_text())
    steps = document["blueprints"][0]["steps"]
    assert [step["id"] for step in steps] == [
        "validate",
        "route",
        "charge",
        "fulfil",
        "review",
        "reject",
    ]
    assert steps[1]["choice"] == [{"when": "{{ data.total > 1000 }}", "next": "review"}]


def test_small_order_is_charged_then_shipped_and_mailed_with_tracking_saved(
    demo_definitions, fake_apis
):
    demo_order("small", sku="TEE", qty=2, email="ann@example.com")

    [order] = run_until_finished("small")

    assert order.status == Order.Status.COMPLETED
    assert order.data["total"] == 50
    assert order.data["tracking"].startswith("TRK_")
    assert fake_apis.requests["/payments/charges"] == 1
    assert fake_apis.requests["/mail/messages"] == 1
    assert "/ops/tickets" not in fake_apis.requests


def test_the_payments_connection_gets_one_oauth2_token_for_every_charge(
    demo_definitions, fake_apis
):
    demo_order("first", sku="TEE", qty=1, email="ann@example.com")
    demo_order("second", sku="MUG", qty=3, email="bob@example.com")

    orders = run_until_finished("first", "second")

    assert [order.status for order in orders] == [Order.Status.COMPLETED] * 2
    assert fake_apis.requests["/payments/charges"] == 2
    assert fake_apis.requests["/payments/oauth/token"] == 1
    logged = [str(attempt.request) for order in orders for attempt in order.log.all()]
    assert not any("demo_at_" in text or "demo-client-secret" in text for text in logged)


def test_order_over_1000_goes_to_review_and_completes_without_a_charge(demo_definitions, fake_apis):
    demo_order("large", sku="LAPTOP", qty=1, email="bob@example.com")

    [order] = run_until_finished("large")

    assert order.status == Order.Status.COMPLETED
    assert order.data["total"] == 1200
    assert order.data["ticket_id"].startswith("OPS_")
    assert "/payments/charges" not in fake_apis.requests


def test_declined_card_ends_failed_at_reject_without_retrying(demo_definitions, fake_apis):
    demo_order("declined", sku="MUG", qty=3, email="decline@example.com")

    [order] = run_until_finished("declined")

    assert order.status == Order.Status.FAILED
    assert order.error == "order could not be charged"
    assert fake_apis.requests["/payments/charges"] == 1
    assert "/shipping/shipments" not in fake_apis.requests


def test_unknown_sku_ends_failed_at_reject_after_the_quote(demo_definitions, fake_apis):
    demo_order("unknown", sku="NOPE", qty=1, email="cy@example.com")

    [order] = run_until_finished("unknown")

    assert order.status == Order.Status.FAILED
    assert order.error == "order could not be charged"
    assert "/payments/charges" not in fake_apis.requests


def test_demo_setup_twice_keeps_one_admin_and_one_token(capsys):
    call_command("demo_setup")
    first = Token.objects.get(user__username="demo-integration").key
    call_command("demo_setup")

    out = capsys.readouterr().out
    assert Token.objects.filter(user__username="demo-integration").count() == 1
    assert Token.objects.get(user__username="demo-integration").key == first
    assert f"Webhook token (demo-integration): {first}" in out
    assert "Password: statemanager-demo" in out
    assert Blueprint.objects.filter(slug="ecommerce-order").count() == 1


def test_demo_integration_token_may_post_orders_but_is_not_staff():
    call_command("demo_setup")

    user = Token.objects.get(user__username="demo-integration").user
    assert not user.is_staff
    assert user.has_perm("orders.add_order")
    assert not user.has_perm("blueprints.change_blueprint")


def test_demo_orders_without_a_server_take_every_branch(fake_apis, capsys):
    call_command("demo_setup")
    call_command("demo_orders", url="http://127.0.0.1:9")

    out = capsys.readouterr().out
    assert "creating the orders with the order service" in out
    orders = run_until_finished(*Order.objects.values_list("order_id", flat=True))
    assert [order.status for order in orders] == ["completed", "completed", "failed", "failed"]
    assert "tracking" in orders[0].data
    assert "ticket_id" in orders[1].data
    assert "total" in orders[2].data and "charge_id" not in orders[2].data
    assert "total" not in orders[3].data
