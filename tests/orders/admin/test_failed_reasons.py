"""The failed attempt's own reason, through the admin: the demo's partners refuse a charge
and an unknown SKU, and the list, the error filter, the order page, the dashboard and an
alert rule see the partner's words beside the end step's text."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.conf import settings
from django.urls import reverse

from apicalls.services import api_call_save
from blueprints.services import definitions_import
from demo.fake_apis import FakeApis
from orders.alerts import failed_in_window
from orders.batch import run_batch
from orders.models import AlertRule, Order
from orders.services import order_create, order_reprocess

pytestmark = pytest.mark.django_db(transaction=True)

DEFINITIONS = settings.BASE_DIR / "demo" / "definitions.json"


@pytest.fixture
def demo(monkeypatch):
    server = FakeApis("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_API_URL", server.url)
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_PAYMENTS_CLIENT_ID", "demo-shop")
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_PAYMENTS_CLIENT_SECRET", "demo-secret")
    definitions_import(document=json.loads(DEFINITIONS.read_text()))
    yield server
    server.shutdown()
    server.server_close()


def failed_orders(**payloads) -> dict[str, Order]:
    for order_id, payload in payloads.items():
        order_create(order_id=order_id, workflow="ecommerce-order", payload=payload)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run_batch()
        orders = Order.objects.filter(order_id__in=payloads)
        if all(order.status in Order.FINISHED for order in orders):
            break
        time.sleep(0.1)
    return {order.order_id: order for order in Order.objects.filter(order_id__in=payloads)}


@pytest.fixture
def declined_and_unknown(demo):
    return failed_orders(
        declined={"sku": "TEE", "qty": 1, "email": "decline@example.com"},
        unknown={"sku": "NOPE", "qty": 1, "email": "ann@example.com"},
    )


def test_the_order_keeps_the_failed_attempts_reason_beside_its_end_text(declined_and_unknown):
    declined, unknown = declined_and_unknown["declined"], declined_and_unknown["unknown"]

    assert (declined.status, declined.failed_step) == (Order.Status.FAILED, "charge")
    assert declined.failed_reason == "HTTP 402: card declined"
    assert (unknown.failed_step, unknown.failed_reason) == (
        "validate",
        "HTTP 404: unknown sku 'NOPE'",
    )
    assert declined.error == unknown.error == "order could not be charged"
    assert declined.log.get(step="charge", outcome="failed").error == "HTTP 402: card declined"


def test_the_list_shows_the_partners_reason_for_a_declined_charge_and_an_unknown_sku(
    declined_and_unknown, admin_client_for, support
):
    page = admin_client_for(support).get(reverse("admin:orders_order_changelist"))

    html = page.content.decode()
    assert "HTTP 402: card declined" in html
    assert "HTTP 404: unknown sku &#x27;NOPE&#x27;" in html
    assert "order could not be charged" in html  # the end step's text, beside


def test_the_error_filter_finds_the_partners_words(declined_and_unknown, admin_client_for, support):
    url = reverse("admin:orders_order_changelist")
    page = admin_client_for(support).get(url, {"error": "declined"})

    assert [order.order_id for order in page.context["cl"].result_list] == ["declined"]


def test_the_order_page_header_says_why_the_attempt_failed(
    declined_and_unknown, admin_client_for, support
):
    order = declined_and_unknown["unknown"]
    url = reverse("admin:orders_order_change", args=[order.pk])

    html = admin_client_for(support).get(url).content.decode()

    assert "failed attempt" in html.lower()
    assert "step &quot;validate&quot;: HTTP 404: unknown sku &#x27;NOPE&#x27;" in html


def test_the_dashboard_shows_the_latest_reason_of_each_failing_step(
    declined_and_unknown, admin_client_for, support
):
    page = admin_client_for(support).get(reverse("admin:index"))

    reasons = {row["step"]: row["reason"] for row in page.context["failures"]}
    assert reasons == {
        "charge": "HTTP 402: card declined",
        "validate": "HTTP 404: unknown sku 'NOPE'",
    }


def test_an_alert_rules_error_contains_matches_the_reason(declined_and_unknown):
    rule = AlertRule(workflow="ecommerce-order", error_contains="unknown sku", window_minutes=60)

    assert [order.order_id for order in failed_in_window(rule)] == ["unknown"]


def test_an_api_calls_error_message_expression_gives_the_reason(demo):
    quote = json.loads(DEFINITIONS.read_text())["api_calls"][0]
    api_call_save(definition={**quote, "error_message": "sku refused: {{ response.body.error }}"})

    order = failed_orders(odd={"sku": "NOPE", "qty": 1, "email": "a@example.com"})["odd"]

    assert order.failed_reason == "HTTP 404: sku refused: unknown sku 'NOPE'"


def test_a_new_run_forgets_the_reason(declined_and_unknown):
    order_reprocess(order=declined_and_unknown["declined"], actor="kim")

    assert Order.objects.get(order_id="declined").failed_reason == ""
