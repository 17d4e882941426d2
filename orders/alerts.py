"""Alert rules: when failed orders of a rule's scope reach its threshold within its window,
one alert goes out, by e-mail or to a webhook, and no other for that rule until the window
has passed since it was sent.

A django-q2 schedule runs `check_alerts` every minute, on any worker of any cluster. Of
several workers checking at once only one sends: each claims the send with an UPDATE that
only succeeds while no alert of the rule went out within the window. A send that fails
gives the claim back, so the next check tries again.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from core.conf import conf
from expressions.secrets import also_masked, mask, secrets_in_scope, url_secrets
from orders.filters import OrderListFilterSet, orders_matching
from orders.models import AlertRule, Order
from orders.notifications import post_json, signature, without_secrets

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 10
# The order list's URL parameters for the filter set's filters, where they differ.
LIST_PARAMETERS = {"status": "status__exact"}


class AlertNotSent(Exception):
    """A send that failed; the message says why (no secret in it)."""


@dataclass(frozen=True)
class Alert:
    """What an alert says: the rule, the failed orders it counted and where to see them."""

    rule: AlertRule
    count: int
    sample_order_ids: list[str]
    orders_url: str
    sent_at: datetime
    test: bool = False

    @property
    def subject(self) -> str:
        prefix = "[test] " if self.test else ""
        return (
            f'{prefix}State Manager alert "{one_line(self.rule.name)}": {self.count} failed '
            f"order{'s' if self.count != 1 else ''} in {minutes(self.rule.window_minutes)}"
        )

    @property
    def text(self) -> str:
        rule = self.rule
        lines = [
            f'Alert rule "{rule.name}": {self.count} order{"s" if self.count != 1 else ""} '
            f"failed in the last {minutes(rule.window_minutes)} (threshold {rule.threshold}).",
            f"Orders of {scope_text(rule)}.",
            f"See them: {self.orders_url}",
        ]
        if self.sample_order_ids:
            lines.append(f"Most recent: {', '.join(self.sample_order_ids)}")
        if self.test:
            lines.append(
                "This is a test alert, sent from the admin: the rule's next real alert is "
                "not affected by it."
            )
        else:
            lines.append(
                f"This rule alerts at most once every {minutes(rule.window_minutes)}; "
                f"the next alert comes no sooner than "
                f"{self.sent_at + rule_window(rule):%Y-%m-%d %H:%M} UTC."
            )
        return "\n\n".join(lines)

    def body(self) -> bytes:
        """The webhook's JSON, as posted and signed."""
        rule = self.rule
        return json.dumps(
            {
                "rule": rule.name,
                "count": self.count,
                "threshold": rule.threshold,
                "window_minutes": rule.window_minutes,
                "workflow": rule.workflow,
                "step": rule.step,
                "error_contains": rule.error_contains,
                "sent_at": self.sent_at.isoformat(),
                "orders_url": self.orders_url,
                "sample_order_ids": self.sample_order_ids,
                "test": self.test,
                "text": f"{self.subject}: {self.orders_url}",
            }
        ).encode()


def check_alerts(now: datetime | None = None) -> int:
    """Send the alert of every enabled rule whose threshold is reached and that sent none
    within its window; returns how many went out."""
    sent = 0
    for rule in AlertRule.objects.filter(enabled=True):
        with also_masked(rule_secrets(rule)):  # in whatever this rule's check logs
            try:  # each rule on its own: one that breaks does not keep the others alerting
                sent += _check(rule, now or timezone.now())
            except Exception:
                logger.exception('alert rule "%s": check failed', one_line(rule.name))
    return sent


def send_test_alert(rule: AlertRule) -> str:
    """Send the rule's alert now, marked as a test, with the failed orders its window holds
    now, whatever the threshold; the rule's own alerts are not affected. Returns where it
    went; raises AlertNotSent saying why it did not."""
    with also_masked(rule_secrets(rule)):
        error = mask(_send(alert_for(rule, timezone.now(), test=True)), secrets_in_scope())
    if error:
        raise AlertNotSent(error)
    return destination(rule)


def _check(rule: AlertRule, now: datetime) -> bool:
    window_start = now - rule_window(rule)
    if rule.last_sent_at is not None and rule.last_sent_at > window_start:
        return False  # sent within the window: nothing to count
    alert = alert_for(rule, now)
    if alert.count < rule.threshold:
        return False
    if not _claim(rule, now, window_start):  # `now` is this rule's, not the loop's start
        return False
    try:
        error = _send(alert)
    except Exception as exc:  # a mail backend or anything else: the claim goes back
        error = f"{type(exc).__name__}: {exc}"[:2000]
    error = mask(error, secrets_in_scope())  # stored and logged: no secret, no URL token
    if error:
        logger.warning(
            'alert rule "%s": %s alert not sent, tried again at the next check: %s',
            one_line(rule.name),
            rule.channel,
            error,
        )
        AlertRule.objects.filter(pk=rule.pk, last_sent_at=now).update(
            last_sent_at=rule.last_sent_at, last_error=error
        )
        return False
    AlertRule.objects.filter(pk=rule.pk).update(last_count=alert.count, last_error="")
    logger.info('alert rule "%s": alert sent (failed orders: %s)', one_line(rule.name), alert.count)
    return True


def _claim(rule: AlertRule, now: datetime, window_start: datetime) -> bool:
    """Take this window's send for this worker: true for exactly one of the workers that
    try at once (the UPDATE's condition is read again under the row's lock)."""
    not_sent_in_window = Q(last_sent_at__isnull=True) | Q(last_sent_at__lte=window_start)
    claimed = AlertRule.objects.filter(not_sent_in_window, pk=rule.pk, enabled=True).update(
        last_sent_at=now
    )
    return claimed == 1


def rule_window(rule: AlertRule) -> timedelta:
    return timedelta(minutes=rule.window_minutes)


def window_filters(rule: AlertRule, now: datetime) -> dict[str, str]:
    """The order list's filters selecting the rule's failed orders that finished within the
    window ending `now`: what the alert counts and what its link shows."""
    filters = {
        "status": Order.Status.FAILED,
        "workflow": rule.workflow,
        "failed_step": rule.step,
        "error": rule.error_contains,
        "finished_after": (now - rule_window(rule)).isoformat(),
        "finished_before": now.isoformat(),
    }
    return {name: value for name, value in filters.items() if value}


def failed_in_window(rule: AlertRule, now: datetime | None = None) -> QuerySet:
    """The orders the rule counts at `now` (default: now)."""
    filters = window_filters(rule, now or timezone.now())
    return orders_matching(filters, filterset=OrderListFilterSet)


def orders_path(rule: AlertRule, now: datetime) -> str:
    """The admin's order list showing exactly the orders the rule counts at `now`."""
    filters = window_filters(rule, now)
    query = {LIST_PARAMETERS.get(name, name): value for name, value in filters.items()}
    return f"{reverse('admin:orders_order_changelist')}?{urlencode(query)}"


def orders_url(rule: AlertRule, now: datetime) -> str:
    """`orders_path` as an absolute URL, for an alert read outside the admin."""
    return conf().public_url + orders_path(rule, now)


def alert_for(rule: AlertRule, now: datetime, *, test: bool = False) -> Alert:
    orders = failed_in_window(rule, now)
    return Alert(
        rule=rule,
        count=orders.count(),
        sample_order_ids=list(
            orders.order_by("-finished_at", "-pk").values_list("order_id", flat=True)[:SAMPLE_SIZE]
        ),
        orders_url=orders_url(rule, now),
        sent_at=now,
        test=test,
    )


def _send(alert: Alert) -> str:
    """Send the alert through its rule's channel; empty when it went out, else why not."""
    if alert.rule.channel == AlertRule.Channel.WEBHOOK:
        return _post(alert)
    return _mail(alert)


def _mail(alert: Alert) -> str:
    recipients = alert.rule.recipients
    if not recipients:
        return "no e-mail address to send to"
    try:
        send_mail(alert.subject, alert.text, settings.DEFAULT_FROM_EMAIL, recipients)
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        server = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        message = f"e-mail through {server} (EMAIL_HOST, EMAIL_PORT): {type(exc).__name__}: {exc}"
        return message[:2000]
    return ""


def _post(alert: Alert) -> str:
    """POST the alert's JSON as status notifications are posted (under the outbound
    allowlist, within 10 s), signed like them when STATE_MANAGER_NOTIFY_SECRET is set."""
    url = alert.rule.webhook_url
    if not url:
        return "no webhook URL to post to"
    body = alert.body()
    headers = {}
    secret = conf().notify_secret
    if secret:
        headers["X-StateManager-Signature"] = signature(body, secret.encode(), int(time.time()))
    result = post_json(url, body, headers=headers, allow=conf().outbound_allow)
    if result.refused:
        return without_url_secrets(f"webhook refused: {result.error}", url)
    if result.error:
        return without_url_secrets(f"webhook: {result.error}", url)
    return "" if result.ok else f"the webhook answered HTTP {result.status}"


def without_url_secrets(text: str, url: str) -> str:
    """`text` without the URL's path, query and password (`url_secrets`) in any form a
    library may quote them back in (percent-encoded in either hex case, decoded, ...), nor
    any secret of the environment: the host is enough to say where a send failed.

    >>> url = "https://x.example/hooks/T0K3N?key=1"
    >>> without_url_secrets(f"no answer from {url}, at /hooks/T0K3N?key=1", url)
    'no answer from https://x.example/***, at /***'
    >>> without_url_secrets("url: /h/T%C3%96K%7Cx failed", "https://x.example/h/TÖK|x")
    'url: /*** failed'
    >>> without_url_secrets("url: /t%C3%B6k?t=s%2Bcr", "https://x.example/t%c3%b6k?t=s%2bcr")
    'url: /***'
    """
    parts = urlsplit(url)
    return without_secrets(text.replace(url, f"{parts.scheme}://{parts.hostname}/***"), url)


def rule_secrets(rule: AlertRule) -> list[str]:
    """What a rule's errors and log lines must not show: its webhook URL's token."""
    return url_secrets(rule.webhook_url) if rule.webhook_url else []


def destination(rule: AlertRule) -> str:
    """Where the rule's alerts go, without secrets: the addresses, or the webhook's host."""
    if rule.channel == AlertRule.Channel.WEBHOOK:
        return f"the webhook at {urlsplit(rule.webhook_url).hostname}"
    return ", ".join(rule.recipients)


def scope_text(rule: AlertRule) -> str:
    """Which failed orders the rule counts, in words.

    >>> scope_text(AlertRule(workflow="shop", error_contains="502"))
    'blueprint "shop", any step, with an error containing "502"'
    """
    return ", ".join(
        [
            f'blueprint "{rule.workflow}"' if rule.workflow else "any blueprint",
            f'step "{rule.step}"' if rule.step else "any step",
            f'with an error containing "{rule.error_contains}"'
            if rule.error_contains
            else "any error",
        ]
    )


def minutes(count: int) -> str:
    return f"{count} minute{'s' if count != 1 else ''}"


def one_line(text: str) -> str:
    """Text for a mail header, which may hold no line break."""
    return re.sub(r"\s+", " ", text).strip()
