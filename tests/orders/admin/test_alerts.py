"""Alert rules in the admin: support adds and edits them, the list shows what each counts
now, "Send a test alert" (the page's button and the list's action) says where it went or
why not, bad input is refused at its field, and an alert's link lists its orders."""

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from orders.alerts import check_alerts
from orders.models import AlertRule, Order
from tests.admin_fixtures import staff_in
from tests.localserver import Reply

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_alertrule_changelist"
FORM = {
    "name": "charge failures",
    "enabled": "on",
    "workflow": "",
    "step": "charge",
    "error_contains": "",
    "threshold": "3",
    "window_minutes": "15",
    "channel": "email",
    "email_to": "ops@example.com\noncall@example.com",
    "webhook_url": "",
}


def email_rule(**fields) -> AlertRule:
    values = {"name": "charge failures", "email_to": "ops@example.com", **fields}
    return AlertRule.objects.create(**values)


def failed_at(orders: list[Order], *, step: str = "charge", ago=timedelta(minutes=1)) -> None:
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        failed_step=step, finished_at=timezone.now() - ago
    )


def send_test(client, rule: AlertRule, **extra):
    data = {"action": "send_test_alerts", "_selected_action": [rule.pk], "index": 0, **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_support_adds_a_rule_and_the_list_shows_it(admin_client_for, support, make_orders):
    failed_at(make_orders(2))
    client = admin_client_for(support)

    response = client.post(reverse("admin:orders_alertrule_add"), FORM)

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.recipients == ["ops@example.com", "oncall@example.com"]
    page = client.get(reverse(CHANGELIST)).text
    assert "charge failures" in page and "step charge" in page
    assert "3 in 15 min" in page and "e-mail to ops@example.com, oncall@example.com" in page
    assert 'class="sm-alert-count"' in page and ">2</a>" in page
    assert "never" in page


def test_an_edit_keeps_the_rules_last_alert(admin_client_for, support, make_orders):
    rule = email_rule(threshold=1)
    client = admin_client_for(support)
    url = reverse("admin:orders_alertrule_change", args=[rule.pk])
    failed_at(make_orders(1))
    assert check_alerts() == 1
    sent_at = AlertRule.objects.get().last_sent_at

    assert client.post(url, {**FORM, "threshold": "2"}).status_code == 302

    rule.refresh_from_db()
    assert (rule.threshold, rule.last_sent_at, rule.last_count) == (2, sent_at, 1)
    assert check_alerts() == 0


def test_the_rule_page_sends_a_test_alert_and_says_so(admin_client_for, support):
    rule = email_rule()
    client = admin_client_for(support)
    url = reverse("admin:orders_alertrule_change", args=[rule.pk])
    assert 'id="test-alert-button"' in client.get(url).text

    page = send_test(client, rule, from_page="1")

    assert page.redirect_chain[-1][0] == url
    assert 'class="success"' in page.text
    assert "Test alert of &quot;charge failures&quot; sent to ops@example.com." in page.text
    (message,) = mail.outbox
    assert message.subject.startswith("[test] ")
    rule.refresh_from_db()
    assert rule.last_sent_at is None


def test_a_failed_test_alert_shows_why(admin_client_for, support, server):
    server.route("POST", "/alerts", Reply(500))
    rule = AlertRule.objects.create(
        name="hook", channel="webhook", webhook_url=f"{server.url}/alerts"
    )

    page = send_test(admin_client_for(support), rule)

    assert 'class="error"' in page.text
    assert "Test alert of &quot;hook&quot; not sent: the webhook answered HTTP 500" in page.text
    assert len(server.requests_to("/alerts")) == 1


def test_who_may_only_view_rules_gets_no_button_and_sends_nothing(admin_client_for):
    rule = email_rule()
    viewer = staff_in(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_alertrule"))
    client = admin_client_for(viewer)

    page = client.get(reverse("admin:orders_alertrule_change", args=[rule.pk])).text
    assert "charge failures" in page and 'id="test-alert-button"' not in page
    send_test(client, rule)
    assert mail.outbox == []


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"email_to": ""}, "email_to", "Give at least one address for an e-mail alert."),
        ({"email_to": "ops@example.com, nope"}, "email_to", "Not an e-mail address: nope."),
        (
            {"channel": "webhook", "email_to": ""},
            "webhook_url",
            "Give the URL to post to for a webhook alert.",
        ),
        (
            {"channel": "webhook", "webhook_url": "ftp://files.example/x"},
            "webhook_url",
            "Enter a valid URL.",
        ),
        ({"threshold": "0"}, "threshold", "greater than or equal to 1"),
        ({"window_minutes": "0"}, "window_minutes", "greater than or equal to 1"),
        ({"window_minutes": "20000"}, "window_minutes", "less than or equal to 10080"),
        ({"workflow": "nope"}, "workflow", 'No blueprint "nope"'),
    ],
    ids=lambda value: value if isinstance(value, str) and "_" in value else None,
)
def test_bad_input_is_refused_at_its_field(admin_client_for, superuser, changes, field, message):
    response = admin_client_for(superuser).post(
        reverse("admin:orders_alertrule_add"), {**FORM, **changes}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert not AlertRule.objects.exists()


def test_the_alerts_link_lists_exactly_the_orders_it_counted(
    admin_client_for, support, make_orders, settings
):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, public_url="https://sm.example")
    counted = make_orders(2)
    failed_at(counted)
    old, elsewhere, completed = make_orders(1), make_orders(1), make_orders(1)
    failed_at(old, ago=timedelta(minutes=20))
    failed_at(elsewhere, step="validate")
    failed_at(completed)
    Order.objects.filter(pk=completed[0].pk).update(status=Order.Status.COMPLETED)
    email_rule(step="charge", threshold=2, window_minutes=15)
    assert check_alerts() == 1
    link = next(word for word in mail.outbox[0].body.split() if word.startswith("https://"))

    url = urlsplit(link)
    page = admin_client_for(support).get(f"{url.path}?{url.query}").text

    for order in counted:
        assert order.order_id in page
    for order in old + elsewhere + completed:
        assert order.order_id not in page
    assert "Any time" in page  # the sidebar's "finished" filter, to widen the list


def test_a_rule_on_a_deleted_blueprint_can_still_be_disabled_but_not_pointed_at_one(
    admin_client_for, support
):
    rule = email_rule(workflow="gone")
    client = admin_client_for(support)
    change = reverse("admin:orders_alertrule_change", args=[rule.pk])

    kept = client.post(change, {**FORM, "workflow": "gone", "enabled": ""})
    assert kept.status_code == 302
    rule.refresh_from_db()
    assert (rule.workflow, rule.enabled) == ("gone", False)

    other = email_rule(name="other")
    moved = client.post(
        reverse("admin:orders_alertrule_change", args=[other.pk]),
        {**FORM, "name": "other", "workflow": "gone"},
    )
    assert moved.status_code == 200
    assert "No blueprint &quot;gone&quot;" in moved.text
