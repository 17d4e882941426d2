"""The admin in a real browser, logged in as each role."""

import json

import pytest
from selenium.webdriver.support.ui import Select

from orders.models import Order
from tests.admin_fixtures import staff_in
from tests.blueprints import definitions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_editor_sees_a_blueprint_error_at_the_steps_field_and_the_diagram(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")
    assert page.find(".field-diagram svg").is_displayed()
    page.screenshot("blueprint-diagram")

    steps = definitions.blueprint()["steps"]
    steps[2]["on_failed"] = "refnd"
    editor = page.find("textarea[name=steps]")
    page.driver.execute_script(
        "arguments[0].value = arguments[1]", editor, json.dumps(steps, indent=2)
    )
    page.find("input[name=_continue]").click()

    error = page.find(".field-steps .errorlist")
    assert 'steps[2] (id "charge").on_failed: no step "refnd"' in error.text
    page.screenshot("blueprint-error-at-field")


def test_support_reprocesses_failed_orders_from_the_failed_step(page, make_orders):
    make_orders(3)
    make_orders(2, status=Order.Status.RUNNING)
    make_orders(2, status=Order.Status.COMPLETED)
    page.log_in(staff_in("Support"))
    page.open("/admin/")
    page.screenshot("dashboard")

    page.open("/admin/orders/order/")
    page.find("#changelist-filter a[href*='status__exact=failed']").click()
    assert len(page.find_all("#result_list tbody tr")) == 3
    page.find("#action-toggle").click()
    Select(page.find("select[name=action]")).select_by_value("reprocess_from_failed")
    page.screenshot("orders-failed-selected")
    page.find("button[name=index]").click()

    assert "Will be reprocessed: 3" in page.find("#confirm-touched").text
    Select(page.find("select[name=version]")).select_by_value("pinned")
    page.screenshot("reprocess-confirmation")
    page.find("#confirm-submit").click()

    message = page.find("ul.messagelist li").text
    assert "Reprocessing 3 order(s) from the failed step" in message
    assert "0 skipped" in message
    assert Order.objects.filter(status=Order.Status.PENDING, run=2).count() == 3
    page.screenshot("reprocess-result")


def test_support_includes_completed_orders_only_by_ticking_their_box(page, make_orders):
    failed = make_orders(1)
    completed = make_orders(2, status=Order.Status.COMPLETED)
    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/")
    page.find("#action-toggle").click()
    Select(page.find("select[name=action]")).select_by_value("reprocess_from_start")
    page.find("button[name=index]").click()

    assert page.find("#confirm-completed").text == "2"
    assert not page.find("#id_include_completed").is_selected()
    page.find("#id_include_completed").click()
    page.screenshot("reprocess-include-completed")
    page.find("#confirm-submit").click()

    assert "Reprocessing 3 order(s) from the start" in page.find("ul.messagelist li").text
    assert Order.objects.filter(pk__in=[o.pk for o in failed + completed], run=2).count() == 3


def test_support_reads_an_orders_timeline(page, make_orders):
    (order,) = make_orders(1)
    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/")
    page.find(f"#result_list a[href*='/{order.pk}/change/']").click()

    timeline = page.find("#order-timeline")
    assert "Run 1 (current)" in timeline.text
    entries = page.find_all("#order-timeline .sm-entry")
    assert len(entries) == 4
    assert "HTTP 502" in entries[-1].text
    entries[-1].find_element("css selector", "details summary").click()
    assert page.find("#order-flow svg").is_displayed()
    page.screenshot("order-timeline")


def test_integration_user_cannot_enter_the_admin(page, db):
    page.log_in(staff_in("Integrations", is_staff=False))
    assert "/admin/login/" in page.driver.current_url
    assert page.find(".errornote").is_displayed()
