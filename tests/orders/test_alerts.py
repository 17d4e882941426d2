"""Alert rules: failed orders of a rule's scope reaching its threshold within its window send
one alert (e-mail or a signed webhook), once per window however often the check runs and
however many workers run it; a failed send is recorded and tried again."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from blueprints.models import WorkflowSnapshot
from orders import tasks
from orders.alerts import AlertNotSent, check_alerts, send_test_alert
from orders.models import AlertRule, Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db

SECRET = "alert-secret-for-tests"
_numbers = itertools.count(1)


@pytest.fixture
def snapshot(db):
    return WorkflowSnapshot.objects.create(
        digest="alerts",
        workflow="shop",
        blueprint_version=1,
        definition={"blueprint": {"slug": "shop", "name": "Shop", "steps": []}, "api_calls": {}},
    )


@pytest.fixture
def fail(snapshot):
    """`fail(...)`: an order that failed `ago` (default 30 s) at `step` of `workflow`."""

    def make(
        *,
        workflow: str = "shop",
        step: str = "charge",
        error: str = 'step "charge": HTTP 502',
        ago: timedelta = timedelta(seconds=30),
        status: str = Order.Status.FAILED,
        now=None,
    ) -> Order:
        return Order.objects.create(
            order_id=f"F-{next(_numbers)}",
            workflow=workflow,
            snapshot=snapshot,
            payload={},
            status=status,
            failed_step=step,
            error=error,
            finished_at=(now or timezone.now()) - ago,
            due_at=None,
        )

    return make


def rule(**fields) -> AlertRule:
    values = {
        "name": "charge failures",
        "threshold": 3,
        "window_minutes": 15,
        "channel": AlertRule.Channel.EMAIL,
        "email_to": "ops@example.com, oncall@example.com",
        **fields,
    }
    return AlertRule.objects.create(**values)


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The recipe of docs/api.md (Status notifications), as a receiver writes it."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    recent = abs(time.time() - timestamp) <= tolerance
    return recent and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# E-mail, once per window.


def test_the_threshold_reached_sends_one_email_however_often_the_check_runs(fail, settings):
    settings.DEFAULT_FROM_EMAIL = "alerts@shop.example"
    alerting = rule()
    orders = [fail() for _ in range(3)]

    assert check_alerts() == 1
    fail()  # more failures within the window
    assert check_alerts() == 0
    assert check_alerts() == 0

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com", "oncall@example.com"]
    assert message.from_email == "alerts@shop.example"
    assert message.subject == (
        'State Manager alert "charge failures": 3 failed orders in 15 minutes'
    )
    assert '"charge failures": 3 orders failed in the last 15 minutes (threshold 3)' in (
        message.body
    )
    assert all(order.order_id in message.body for order in orders)
    alerting.refresh_from_db()
    assert alerting.last_count == 3 and alerting.last_error == ""
    assert alerting.last_sent_at is not None


def test_the_link_selects_the_rules_failed_orders_of_the_window(fail, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, public_url="https://sm.example")
    rule(threshold=1, workflow="shop", step="charge", error_contains="502")
    fail()

    check_alerts()

    link = next(line for line in mail.outbox[0].body.split() if line.startswith("https://"))
    url = urlsplit(link)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://sm.example/admin/orders/order/"
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query.keys() == {
        "status__exact",
        "workflow",
        "failed_step",
        "error",
        "finished_after",
        "finished_before",
    }
    assert (query["status__exact"], query["workflow"], query["failed_step"], query["error"]) == (
        "failed",
        "shop",
        "charge",
        "502",
    )


def test_fewer_failures_than_the_threshold_in_the_window_send_nothing(fail):
    rule()
    fail()
    fail()
    fail(ago=timedelta(minutes=16))  # failed before the window
    fail(status=Order.Status.COMPLETED)
    fail(status=Order.Status.CANCELLED)

    assert check_alerts() == 0
    assert mail.outbox == []


def test_the_alert_goes_out_again_once_the_window_has_passed(fail):
    alerting = rule(window_minutes=15)
    now = timezone.now()
    for _ in range(3):
        fail(now=now)
    assert check_alerts(now=now) == 1

    later = now + timedelta(minutes=10)
    for _ in range(3):
        fail(now=later)
    assert check_alerts(now=later) == 0  # still within the window of the first alert

    past_window = now + timedelta(minutes=15, seconds=1)
    assert check_alerts(now=past_window) == 1

    assert len(mail.outbox) == 2
    assert "3 failed orders" in mail.outbox[1].subject  # those of the new window
    alerting.refresh_from_db()
    assert alerting.last_sent_at == past_window


def test_a_disabled_rule_sends_nothing(fail):
    rule(enabled=False, threshold=1)
    fail()

    assert check_alerts() == 0
    assert mail.outbox == []


@pytest.mark.parametrize(
    "scope, matching, other",
    [
        ({"workflow": "shop"}, {"workflow": "shop"}, {"workflow": "returns"}),
        ({"step": "charge"}, {"step": "charge"}, {"step": "ship"}),
        (
            {"error_contains": "DECLINED"},
            {"error": 'step "charge": card declined'},
            {"error": 'step "charge": HTTP 502'},
        ),
    ],
    ids=["workflow", "step", "error text"],
)
def test_the_scope_counts_only_matching_orders(fail, scope, matching, other):
    rule(threshold=2, **scope)
    kept = fail(**matching)
    for _ in range(5):
        fail(**other)

    assert check_alerts() == 0

    second = fail(**matching)
    assert check_alerts() == 1
    body = mail.outbox[0].body
    assert "2 orders failed" in body
    assert kept.order_id in body and second.order_id in body


@pytest.mark.django_db(transaction=True)
def test_an_order_the_engine_fails_counts_at_the_step_that_failed(server):
    server.route("POST", "/charge", Reply(502, {"error": "bad gateway"}))
    steps = [
        {"id": "charge", "call": "pay", "on_failed": "refuse"},
        {"id": "refuse", "end": "failed", "error": "payment refused"},
    ]
    order = process(make_order(steps, [api_call("pay", server.url + "/charge")]))
    assert order.status == Order.Status.FAILED
    rule(threshold=1, workflow="flow", step="charge")

    assert check_alerts() == 1
    assert order.order_id in mail.outbox[0].body


# Webhooks.


def test_a_webhook_alert_is_posted_signed(fail, server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, notify_secret=SECRET)
    server.route("POST", "/alerts", Reply(204, ""))
    rule(
        channel=AlertRule.Channel.WEBHOOK,
        webhook_url=f"{server.url}/alerts",
        email_to="",
        workflow="shop",
        step="charge",
    )
    orders = [fail() for _ in range(3)]

    assert check_alerts() == 1

    (received,) = server.requests_to("/alerts")
    body = received.body
    assert set(body) == {
        "rule",
        "count",
        "threshold",
        "window_minutes",
        "workflow",
        "step",
        "error_contains",
        "sent_at",
        "orders_url",
        "sample_order_ids",
        "test",
        "text",
    }
    assert (body["rule"], body["count"], body["threshold"], body["window_minutes"]) == (
        "charge failures",
        3,
        3,
        15,
    )
    assert (body["workflow"], body["step"], body["error_contains"], body["test"]) == (
        "shop",
        "charge",
        "",
        False,
    )
    assert sorted(body["sample_order_ids"]) == sorted(order.order_id for order in orders)
    assert "/admin/orders/order/?status__exact=failed" in body["orders_url"]
    assert verify(SECRET, received.headers["X-StateManager-Signature"], received.raw)
    assert not verify("another secret", received.headers["X-StateManager-Signature"], received.raw)


def test_a_webhook_alert_samples_at_most_ten_orders_and_is_unsigned_without_a_secret(fail, server):
    server.route("POST", "/alerts", Reply(200))
    rule(channel=AlertRule.Channel.WEBHOOK, webhook_url=f"{server.url}/alerts", threshold=12)
    for _ in range(12):
        fail()

    check_alerts()

    (received,) = server.requests_to("/alerts")
    assert received.body["count"] == 12 and len(received.body["sample_order_ids"]) == 10
    assert "X-StateManager-Signature" not in received.headers


def test_a_failed_webhook_is_recorded_and_tried_again_at_the_next_check(fail, server, caplog):
    answers = [500]
    server.route("POST", "/alerts", lambda _r: Reply(answers.pop(0) if answers else 200))
    alerting = rule(channel=AlertRule.Channel.WEBHOOK, webhook_url=f"{server.url}/alerts")
    for _ in range(3):
        fail()

    assert check_alerts() == 0
    alerting.refresh_from_db()
    assert alerting.last_error == "the webhook answered HTTP 500"
    assert alerting.last_sent_at is None
    assert 'alert rule "charge failures": webhook alert not sent' in caplog.text

    assert check_alerts() == 1
    alerting.refresh_from_db()
    assert alerting.last_error == "" and alerting.last_sent_at is not None
    assert len(server.requests_to("/alerts")) == 2


def test_an_unreachable_webhook_names_its_host_but_not_the_token_in_its_path(fail, caplog):
    url = f"http://127.0.0.1:{closed_port()}/hooks/T0K3N-123"
    alerting = rule(channel=AlertRule.Channel.WEBHOOK, webhook_url=url, threshold=1)
    fail()

    assert check_alerts() == 0

    alerting.refresh_from_db()
    assert alerting.last_error.startswith("webhook: ConnectionError")
    assert "T0K3N" not in alerting.last_error and "T0K3N" not in caplog.text


def test_a_webhook_outside_the_outbound_allowlist_is_refused(fail, server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, outbound_allow=[])
    alerting = rule(
        channel=AlertRule.Channel.WEBHOOK, webhook_url=f"{server.url}/alerts", threshold=1
    )
    fail()

    assert check_alerts() == 0

    alerting.refresh_from_db()
    assert alerting.last_error.startswith("webhook refused:")
    assert server.received == []


def test_a_failed_email_is_recorded_and_tried_again(fail, settings):
    backend = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    alerting = rule(threshold=1)
    fail()

    assert check_alerts() == 0
    alerting.refresh_from_db()
    assert alerting.last_error.startswith("e-mail through 127.0.0.1:")
    assert "(EMAIL_HOST, EMAIL_PORT): ConnectionRefusedError" in alerting.last_error
    assert alerting.last_sent_at is None

    settings.EMAIL_BACKEND = backend
    assert check_alerts() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_workers_checking_at_once_send_one_alert(fail, server):
    def slow(_request):
        time.sleep(0.3)  # the first send is still going when the others claim
        return Reply(200)

    server.route("POST", "/alerts", slow)
    rule(channel=AlertRule.Channel.WEBHOOK, webhook_url=f"{server.url}/alerts", threshold=1)
    fail()
    workers = 4
    start = threading.Barrier(workers)
    sent = []

    def worker():
        try:
            start.wait()
            sent.append(check_alerts())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(sent) == [0, 0, 0, 1]
    assert len(server.requests_to("/alerts")) == 1


# Test alerts and the schedule.


def test_a_test_alert_goes_out_now_without_touching_the_window(fail):
    alerting = rule(threshold=50)
    fail()

    assert send_test_alert(alerting) == "ops@example.com, oncall@example.com"

    (message,) = mail.outbox
    assert message.subject.startswith('[test] State Manager alert "charge failures"')
    assert "This is a test alert" in message.body
    alerting.refresh_from_db()
    assert alerting.last_sent_at is None and alerting.last_count is None


def test_a_test_webhook_says_so_and_a_failed_one_says_why(server):
    server.route("POST", "/alerts", Reply(200))
    server.route("POST", "/broken", Reply(503))
    alerting = rule(channel=AlertRule.Channel.WEBHOOK, webhook_url=f"{server.url}/alerts")

    assert send_test_alert(alerting) == "the webhook at 127.0.0.1"
    assert server.requests_to("/alerts")[0].body["test"] is True

    alerting.webhook_url = f"{server.url}/broken"
    with pytest.raises(AlertNotSent, match="the webhook answered HTTP 503"):
        send_test_alert(alerting)
    alerting.refresh_from_db()
    assert alerting.last_error == ""


def test_the_schedule_checks_the_rules_every_minute(fail):
    tasks.ensure_schedule()
    tasks.ensure_schedule()
    (schedule,) = Schedule.objects.filter(func=tasks.ALERTS_FUNC)
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 1)

    rule(threshold=1)
    fail()
    assert tasks.check_alerts() == "sent 1 alerts"
    assert len(mail.outbox) == 1


class BrokenBackend:
    """A mail backend that fails in a way no SMTP error does."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise RuntimeError("the mail service is misconfigured")


def test_a_rule_whose_send_breaks_gives_its_window_back_and_others_still_alert(
    fail, settings, server
):
    settings.EMAIL_BACKEND = f"{__name__}.BrokenBackend"
    server.route("POST", "/alerts", Reply(200, {}))
    broken = rule(name="by mail", threshold=1)
    rule(name="by webhook", threshold=1, channel="webhook", webhook_url=f"{server.url}/alerts")
    fail()

    assert check_alerts() == 1  # the webhook's

    broken.refresh_from_db()
    assert broken.last_sent_at is None
    assert broken.last_error == "RuntimeError: the mail service is misconfigured"
    assert len(server.received) == 1
