"""Alert rules in a real browser, as support: the list with what each rule counts now, and
"Send a test alert" on a rule's page."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from orders.models import AlertRule, Order
from tests.browser.conftest import support_granted

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def support_with_alert_rules():
    return support_granted("statemanager.migrations.0002_alert_roles", "grant_alerts")


def test_support_sends_a_test_alert_from_the_rules_page(page, make_orders):  # noqa: F811
    failed = make_orders(4)
    Order.objects.filter(pk__in=[order.pk for order in failed]).update(
        failed_step="charge", finished_at=timezone.now() - timedelta(minutes=2)
    )
    rule = AlertRule.objects.create(
        name="Payments failing",
        workflow=failed[0].workflow,
        step="charge",
        error_contains="502",
        threshold=3,
        window_minutes=15,
        email_to="ops@example.com, oncall@example.com",
    )
    AlertRule.objects.create(
        name="Any failure, to the ops webhook",
        channel="webhook",
        webhook_url="https://hooks.example/alerts",
        threshold=50,
        window_minutes=60,
        last_error="the webhook answered HTTP 503",
        last_sent_at=timezone.now(),
        last_count=57,
    )
    page.log_in(support_with_alert_rules())

    page.open("/admin/orders/alertrule/")
    assert "4" in page.find(".field-failed_now").text
    table, page_width = page.driver.execute_script(
        "return [document.querySelector('#result_list').scrollWidth,"
        " document.querySelector('.results').clientWidth]"
    )
    assert table <= page_width, "the list fits without a horizontal scrollbar"
    page.screenshot("14-alerts-list")

    page.open(f"/admin/orders/alertrule/{rule.pk}/change/")
    page.find("#test-alert-button").click()

    message = page.find(".messagelist .success").text
    assert 'Test alert of "Payments failing" sent to ops@example.com, oncall@example.com.' in (
        message
    )
    assert page.driver.current_url.endswith(f"/admin/orders/alertrule/{rule.pk}/change/")
    page.screenshot("14-alerts-test-sent")
    (sent,) = mail.outbox
    assert sent.subject.startswith('[test] State Manager alert "Payments failing": 4 failed')

    page.find(".field-failed_now a").click()  # the orders the rule counts now
    assert len(page.find_all("#result_list tbody tr")) == 4
    assert "Any time" in page.find("#changelist-filter").text
    page.screenshot("14-alerts-orders")
