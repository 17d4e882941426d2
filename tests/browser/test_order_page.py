"""Issue 13, item 4: support reads why an order failed on its page, and resolves a callback
that never came, in a real browser. The orders run through the engine against local
APIs."""

import pytest

from blueprints.services import blueprint_save
from orders.batch import run_batch
from orders.models import Callback, Order, StepLog
from orders.services import order_create
from tests.admin_fixtures import staff_in
from tests.localserver import Reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOAD = {"sku": "TEE", "qty": 2, "email": "ann@example.com"}


@pytest.fixture
def apis(server, monkeypatch):
    """The example's API calls answered by a local server."""
    for name in ("SHOP_URL", "PAYMENTS_URL", "SHIPPING_URL", "MAIL_URL", "OPS_URL"):
        monkeypatch.setenv(f"STATE_MANAGER_SECRET_{name}", server.url)
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", "tok-s3cret")
    server.route("POST", "/quotes", Reply(200, {"total": 50}))
    return server


def run(order_id: str, workflow: str) -> Order:
    order, _ = order_create(order_id=order_id, workflow=workflow, payload=PAYLOAD)
    run_batch()
    order.refresh_from_db()
    return order


def test_support_sees_the_failed_step_the_end_and_the_data_around_each_step(page, blueprint, apis):
    apis.route("POST", "/charges", Reply(402, {"error": "card declined"}))
    order = run("shop-1001", "ecommerce-order")
    assert (order.status, order.failed_step) == (Order.Status.FAILED, "charge")

    page.log_in(staff_in("Support"))
    page.open(f"/admin/orders/order/{order.pk}/change/")

    charge = page.find('#order-flow g[data-step="charge"] rect')
    assert "failed" in charge.get_attribute("class").split()
    terminal = page.find('#order-flow g[data-step="(failed)"] rect')
    assert "reached" in terminal.get_attribute("class").split()
    failed = page.find("#order-timeline .sm-failed-here")
    assert failed.get_attribute("data-step") == "charge"
    assert "the step that failed (HTTP 402)" in failed.text
    data = failed.find_element("css selector", "details.sm-data")
    assert data.get_attribute("open") is not None  # open at once on the failed step
    assert '"total": 50' in data.text
    validate = page.find('#order-timeline .sm-visit[data-step="validate"]')
    assert "saved total" in validate.text
    assert not page.find_all("#order-live")  # a failed order does not reload itself
    page.screenshot("13-4-failed-order")


@pytest.fixture
def bank_transfer(blueprint, apis):
    """A blueprint whose payment waits for the bank's callback."""
    apis.route("POST", "/charges", Reply(201, {"id": "ch-77", "state": "pending"}))
    apis.route("POST", "/shipments", Reply(200, {"tracking": ["T-1"]}))
    return blueprint_save(
        definition={
            "slug": "bank-transfer",
            "name": "Bank transfer",
            "steps": [
                {
                    "id": "validate",
                    "call": "shop.quote",
                    "save": {"total": "{{ response.body.total }}"},
                },
                {
                    "id": "await_transfer",
                    "call": "payments.charge",
                    "wait_for_callback": {"timeout_seconds": 86400},
                    "on_failed": "reject",
                },
                {"id": "ship", "call": "shipping.create", "end": "completed"},
                {"id": "reject", "end": "failed", "error": "the transfer did not arrive"},
            ],
        }
    )


def test_support_resolves_a_callback_that_never_came_as_a_failure(page, bank_transfer):
    order = run("shop-2002", "bank-transfer")
    assert order.status == Order.Status.WAITING
    callback = Callback.objects.get(order=order)
    support = staff_in("Support")

    page.log_in(support)
    page.open(f"/admin/orders/order/{order.pk}/change/")
    reason = page.find("#id_reason")  # typing pauses the page's reload
    reason.send_keys("The bank says the transfer was recalled by the customer")

    assert callback.token in page.find("#callback-url").text
    assert callback.expires_at.strftime("%Y-%m-%d %H:%M") in page.find("#callback-due").text
    assert page.find("#order-live").is_displayed()
    assert page.find(".sm-live-paused").is_displayed()
    assert page.find("#order-flow g[data-step='await_transfer'] rect.current")
    page.screenshot("13-4-waiting-order")

    page.find("#resolve-callback button[value=failure]").click()

    assert "was resolved as a failure" in page.find("ul.messagelist li").text
    logged = order.log.get(kind=StepLog.Kind.CALLBACK)
    assert (logged.actor, logged.outcome) == (support.username, "failed")
    run_batch()  # the order goes on as if the bank had posted a failure
    order.refresh_from_db()
    assert (order.status, order.error) == (Order.Status.FAILED, "the transfer did not arrive")

    page.open(f"/admin/orders/order/{order.pk}/change/")
    entry = page.find("#order-timeline .sm-kind-callback")
    assert f"resolved by hand by {support.username}" in entry.text
    assert "Reason: The bank says the transfer was recalled by the customer" in entry.text
    assert not page.find_all("#order-waiting")
    failed = page.find('#order-flow g[data-step="await_transfer"] rect')
    assert "failed" in failed.get_attribute("class").split()
    page.screenshot("13-4-resolved")


def test_support_sees_why_an_order_waits_for_its_host(page, blueprint, apis):
    from hosts.models import Host
    from hosts.services import host_pause

    host = Host.objects.create(host="127.0.0.1")
    host_pause(host=host, actor="ann")
    order = run("shop-1003", "ecommerce-order")
    assert (order.status, order.attempt) == (Order.Status.WAITING, 0)

    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/?held_by=127.0.0.1")
    assert page.find("#result_list").text.count("shop-1003") == 1
    page.screenshot("14-held-order-list")

    page.open(f"/admin/orders/order/{order.pk}/change/")
    held = page.find("#order-held").text
    assert "waits for its host: host 127.0.0.1 is paused" in held
    assert "no attempt is counted" in held
    assert "waits: host 127.0.0.1 is paused" in page.find("#order-timeline").text
    page.screenshot("14-held-order-page")
