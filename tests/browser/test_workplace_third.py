"""The workplace in a real browser, by the role that does each part: an editor's change
survives a restart of the demo; support reads the partner's reason for each failure,
pauses a host no editor added and sees what each order waits for; a newcomer finds the
admin at the site's address and an order by its id."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from selenium.webdriver.common.keys import Keys

from blueprints.models import Blueprint
from blueprints.services import blueprint_pause
from demo.fake_apis import FakeApis
from hosts.models import Host
from orders.batch import run_batch
from orders.models import Order
from orders.services import order_create
from tests.admin_fixtures import staff_in
from tests.browser.conftest import support_granted
from tests.browser.test_editing import editor_text, set_editor_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEFINITIONS = settings.BASE_DIR / "demo" / "definitions.json"


@pytest.fixture
def demo(monkeypatch):
    server = FakeApis("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_API_URL", server.url)
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_PAYMENTS_CLIENT_ID", "demo-shop")
    monkeypatch.setenv("STATE_MANAGER_SECRET_DEMO_PAYMENTS_CLIENT_SECRET", "demo-secret")
    call_command("demo_setup", stdout=open("/dev/null", "w"))  # noqa: SIM115
    yield server
    server.shutdown()
    server.server_close()


def run_until_settled(*order_ids: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run_batch()
        statuses = set(
            Order.objects.filter(order_id__in=order_ids).values_list("status", flat=True)
        )
        if statuses <= {*Order.FINISHED, Order.Status.WAITING}:
            return
        time.sleep(0.1)


def support_with_hosts():
    return support_granted("statemanager.migrations.0003_host_roles", "grant_hosts")


def test_an_editors_change_survives_a_restart_of_the_demo(page, demo, capsys):
    page.log_in(staff_in("Blueprint editors"))
    blueprint = Blueprint.objects.get(slug="ecommerce-order")
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")
    steps = json.loads(editor_text(page))
    steps[-1]["error"] = "the card was refused: ask the customer for another"
    set_editor_text(page, json.dumps(steps, indent=2))
    page.find("input[name=_continue]").click()
    assert "was changed successfully" in page.find(".messagelist").text

    capsys.readouterr()
    call_command("demo_setup")  # what ./run does at every start
    said = capsys.readouterr().out

    assert "Kept blueprint ecommerce-order as it is" in said
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")
    assert "ask the customer for another" in editor_text(page)
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/versions/")
    versions = page.find("#content-main").text
    assert "demo-setup" in versions
    page.screenshot("26-1-editors-change-kept")


def test_support_reads_the_partners_reason_for_each_failure(page, demo):
    for order_id, payload in {
        "declined-1": {"sku": "TEE", "qty": 1, "email": "decline@example.com"},
        "unknown-1": {"sku": "NOPE", "qty": 1, "email": "ann@example.com"},
        "fine-1": {"sku": "MUG", "qty": 2, "email": "bob@example.com"},
    }.items():
        order_create(order_id=order_id, workflow="ecommerce-order", payload=payload)
    run_until_settled("declined-1", "unknown-1", "fine-1")
    page.log_in(support_with_hosts())

    page.open("/admin/orders/order/")
    rows = {
        row.find_element("css selector", ".field-order_link").text: row.text
        for row in page.find_all("#result_list tbody tr")
    }
    assert "HTTP 402: card declined" in rows["declined-1"]
    assert "HTTP 404: unknown sku 'NOPE'" in rows["unknown-1"]
    assert "order could not be charged" in rows["unknown-1"]
    page.screenshot("26-2-list-reasons")

    box = page.find("input[name=error]")
    box.send_keys("declined", Keys.ENTER)
    listed = [cell.text for cell in page.find_all("#result_list .field-order_link")]
    assert listed == ["declined-1"]
    page.screenshot("26-2-error-filter")

    page.open("/admin/orders/order/unknown-1/change/")
    assert "HTTP 404: unknown sku 'NOPE'" in page.find(".field-failure").text
    page.screenshot("26-2-order-header")

    page.open("/admin/")
    failures = page.find("#dashboard-failures").text
    assert "HTTP 402: card declined" in failures and "unknown sku" in failures
    assert (
        page.find("#dashboard-every-host a")
        .get_attribute("href")
        .endswith("/admin/hosts/host/every/")
    )
    page.screenshot("26-2-dashboard-reasons")


def test_support_pauses_a_host_no_editor_added_and_sees_what_orders_wait_for(page, demo):
    page.log_in(support_with_hosts())
    page.open("/admin/hosts/host/")
    page.find("#every-host-link").click()
    row = page.find('tr[data-host="127.0.0.1"]')
    assert "shop.quote" in row.text and "payments.charge" in row.text
    page.screenshot("26-3-every-host")
    row.find_element("css selector", "button[value=pause]").click()
    assert "Paused: 127.0.0.1" in page.find(".messagelist").text
    assert "PAUSED by" in page.find('tr[data-host="127.0.0.1"]').text
    page.screenshot("26-3-host-paused")
    assert Host.objects.get(host="127.0.0.1").paused

    order_create(
        order_id="held-1",
        workflow="ecommerce-order",
        payload={"sku": "TEE", "qty": 1, "email": "ann@example.com"},
    )
    run_until_settled("held-1")
    order_create(
        order_id="next-1",
        workflow="ecommerce-order",
        payload={"sku": "TEE", "qty": 1, "email": "kim@example.com"},
    )
    page.open("/admin/orders/order/")
    waits = {
        row.find_element("css selector", ".field-order_link").text: row.find_element(
            "css selector", ".field-waiting_for_display"
        ).text
        for row in page.find_all("#result_list tbody tr")
    }
    assert waits == {"held-1": "host 127.0.0.1 (paused)", "next-1": "next batch"}
    page.screenshot("26-3-waiting-for")

    blueprint_pause(blueprint=Blueprint.objects.get(slug="ecommerce-order"), actor="ann")
    page.open("/admin/orders/order/held-1/change/")
    assert "is paused since" in page.find("#order-blueprint-paused").text
    assert "by ann" in page.find("#order-blueprint-paused").text
    page.screenshot("26-3-held-by-paused-blueprint")

    page.open("/admin/hosts/host/every/")
    page.find('tr[data-host="127.0.0.1"] button[value=resume]').click()
    assert "Resumed: 127.0.0.1" in page.find(".messagelist").text
    assert not Host.objects.get(host="127.0.0.1").paused


def test_a_newcomer_finds_the_admin_and_an_order_by_its_id(page, demo):
    order_create(
        order_id="my-1",
        workflow="ecommerce-order",
        payload={"sku": "TEE", "qty": 2, "email": "ann@example.com"},
    )
    run_until_settled("my-1")
    page.log_in(staff_in(None, is_superuser=True))

    page.open("/")
    assert page.driver.current_url.endswith("/admin/")
    live = page.find("#dashboard-live")
    assert "reloads every 15 seconds" in live.text
    page.screenshot("26-7-dashboard-live")

    page.open("/admin/orders/order/my-1/change/")
    header = page.find("fieldset.module").text
    assert "my-1" in header and "COMPLETED" in header
    times = [cell.text for cell in page.find_all(".sm-when")]
    assert times and all(len(text) == 19 for text in times)  # 2026-01-05 10:00:00
    page.screenshot("26-7-order-by-id")
