"""Support staff find out why orders failed: the list's columns and filters, and the
dashboard's failures by blueprint and step, in a real browser at 1400 px."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from blueprints.models import WorkflowSnapshot
from orders.models import Order, StepLog
from tests.admin_fixtures import staff_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_ID = "shop-eu-west-1-2026-11-26-checkout-0000012345678-retry-of-0000012345001"
DECLINED = (
    'step "charge": HTTP 402 from payments.charge: {"error": "card_declined", "decline_code": '
    '"insufficient_funds", "message": "Your card has insufficient funds."}\n'
    "request id req_8f2a1c, retried 0 times (4xx is not retried)"
)
# (how many, failed step, HTTP status, error, current step after the on_failed path)
FAILURES = [
    (3, "charge", 402, DECLINED, "reject"),
    (4, "charge", 502, 'step "charge": HTTP 502 Bad Gateway after 5 attempts', "reject"),
    (2, "validate", 404, 'step "validate": HTTP 404 {"error": "unknown sku NOPE"}', "reject"),
    (2, "fulfil", 503, 'step "fulfil": ship: HTTP 503 Service Unavailable; mail: ok', "fulfil"),
    (1, "validate", None, 'step "validate": timed out after 10 s', "reject"),
]


def failed_orders(make_orders) -> dict[str, list[Order]]:
    """Failed orders as the engine leaves them, on two blueprint versions, plus others."""
    newer = WorkflowSnapshot.objects.create(
        workflow="ecommerce-order", blueprint_version=2, digest="2" * 64, definition={}
    )
    made: dict[str, list[Order]] = {}
    for index, (count, step, status, error, current) in enumerate(FAILURES):
        orders = make_orders(count)
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(
            failed_step=step,
            failed_http_status=status,
            error=error,
            current_step=current,
            attempt=0,
            **({"snapshot": newer} if index % 2 else {}),
        )
        made.setdefault(step, []).extend(orders)
    Order.objects.filter(pk=made["charge"][0].pk).update(order_id=LONG_ID)
    make_orders(2, status=Order.Status.RUNNING)
    make_orders(2, status=Order.Status.COMPLETED)
    return made


def no_overflow(page) -> dict:
    """The widths that tell whether the list fits the window: the page, the table's right
    edge and where the filter sidebar begins."""
    return page.driver.execute_script(
        """
        const table = document.querySelector('#result_list').getBoundingClientRect();
        const filter = document.querySelector('#changelist-filter').getBoundingClientRect();
        return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                table_right: table.right, filter_left: filter.left};
        """
    )


def test_support_sees_why_orders_failed_in_the_list(page, make_orders):
    failed_orders(make_orders)
    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/?status__exact=failed")

    rows = page.find_all("#result_list tbody tr")
    assert len(rows) == 12
    headers = [th.text for th in page.find_all("#result_list thead th")][1:]
    assert headers == [
        "ORDER ID",
        "WORKFLOW",
        "STATUS",
        "CURRENT STEP",
        "FAILED STEP",
        "HTTP",
        "ERROR",
        "ATTEMPTS",
        "VERSION",
        "CREATED",
        "UPDATED",
    ]
    declined = page.find(".field-error_line span[title*='insufficient_funds']")
    assert declined.get_attribute("title") == DECLINED
    assert "retried 0 times" not in declined.text  # the first line only
    heights = page.driver.execute_script(
        "return [arguments[0].scrollHeight, arguments[0].clientHeight]", declined
    )
    assert heights[0] > heights[1]  # cut after two lines with an ellipsis, whole on hover
    long_id = page.find(f".field-order_link span[title='{LONG_ID}']")
    assert long_id.size["width"] < 200
    date, time = page.find("#result_list td.field-created").text.split("\n")
    assert len(date) == 10 and len(time) == 8 and time[2] == time[5] == ":"  # to the second
    page.screenshot("13-1-failed-list")
    sizes = no_overflow(page)
    assert sizes["page"] <= sizes["window"], sizes
    assert sizes["table_right"] <= sizes["filter_left"], sizes


def filter_by(page, parameter: str, text: str) -> list:
    """Type into a text filter of the sidebar, press Enter, and wait for the new list."""
    page.find(f"#filter-{parameter} input[type=search]").send_keys(text, Keys.ENTER)
    WebDriverWait(page.driver, 10).until(lambda driver: f"{parameter}=" in driver.current_url)
    return page.find_all("#result_list tbody tr")


def test_support_filters_failed_orders_by_step_status_error_and_version(page, make_orders):
    made = failed_orders(make_orders)
    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/")

    page.find("#changelist-filter a[href*='failed_step=charge']").click()
    WebDriverWait(page.driver, 10).until(lambda driver: "failed_step=" in driver.current_url)
    assert len(page.find_all("#result_list tbody tr")) == 7
    assert len(filter_by(page, "http_status", "5xx")) == 4
    assert len(filter_by(page, "error", "bad gateway")) == 4
    assert page.find("#filter-http_status input[type=search]").get_attribute("value") == "5xx"
    assert "failed_step=charge" in page.driver.current_url
    filter_by(page, "blueprint_version", "2")
    shown = {cell.text for cell in page.find_all("#result_list th.field-order_link")}
    assert shown == {order.order_id for order in made["charge"][3:]}
    page.screenshot("13-1-filters")

    page.find("#filter-error a.sm-clear-filter").click()
    WebDriverWait(page.driver, 10).until(lambda driver: "error=" not in driver.current_url)
    assert len(page.find_all("#result_list tbody tr")) == 4


def activity(orders: list[Order]) -> None:
    """Six hours of log entries: steady steps, and a burst of failures two hours ago."""
    now = timezone.now()
    entries = []
    for minute in range(0, 360, 3):
        for _ in range(2 + (minute // 30) % 4):
            entries.append((minute, "succeeded"))
        if 110 <= minute <= 140:
            entries += [(minute, "retrying")] * 3 + [(minute, "failed")]
    StepLog.objects.bulk_create(
        StepLog(
            order=orders[index % len(orders)],
            run=1,
            step="charge",
            attempt=1,
            outcome=outcome,
            started_at=now - timedelta(minutes=minute, seconds=20),
        )
        for index, (minute, outcome) in enumerate(entries)
    )


def test_support_goes_from_the_dashboards_failures_to_exactly_those_orders(page, make_orders):
    made = failed_orders(make_orders)
    activity(made["charge"])
    (due,) = make_orders(1, status=Order.Status.PENDING)
    Order.objects.filter(pk=due.pk).update(due_at=timezone.now() - timedelta(hours=3, minutes=12))
    page.log_in(staff_in("Support"))
    page.open("/admin/")

    assert "Oldest due for 3 h 12 min" in page.find("#dashboard-oldest-due").text
    bars = page.find_all("#dashboard-activity .sm-chart-steps")
    assert len(bars) == 36 and page.find_all("#dashboard-activity .sm-chart-failures")
    rows = page.find_all("#dashboard-failures tr")[1:]
    counts = [
        (
            row.find_elements("css selector", "td")[1].text,
            row.find_elements("css selector", "td")[-1].text,
        )
        for row in rows
    ]
    assert counts == [("charge", "7"), ("validate", "3"), ("fulfil", "2")]
    page.screenshot("13-5-dashboard")

    page.find("#dashboard-failures a[href*='failed_step=validate']").click()
    WebDriverWait(page.driver, 10).until(lambda driver: "failed_step=" in driver.current_url)
    listed = {cell.text for cell in page.find_all("#result_list th.field-order_link")}
    assert listed == {order.order_id for order in made["validate"]}
    assert "status__exact=failed" in page.driver.current_url
