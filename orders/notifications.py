"""Delivery of status notifications (contract section 9): each `OrderEvent` recorded by
`orders.transitions` is POSTed to its blueprint's `notify_url`, signed with
STATE_MANAGER_NOTIFY_SECRET, and posted again with backoff until the receiver answers
2xx, under the outbound allowlist like every call.

An order's events go out one after another: an event is due only once every earlier
event of its order is delivered or given up. Without a secret nothing is sent: the
events stay pending, saying why, until one is set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.conf import conf
from expressions.language import ExpressionError, render
from expressions.names import order_name
from orders.engine.calls import OutboundRefused, session_for
from orders.engine.deadlines import deadline
from orders.engine.retry import RetryPolicy, retry_delay
from orders.models import Order, OrderEvent

logger = logging.getLogger(__name__)

EVENT_TYPE = "order.status_changed"
# About a day of attempts: 30 s doubling up to two hours between them, with jitter.
MAX_ATTEMPTS = 20
BACKOFF = RetryPolicy(backoff_seconds=30.0, backoff_rate=2.0, max_backoff_seconds=7200.0)
# Every outbound post (notifications, alert webhooks) ends within this, all counted:
# connect, send, and the answer's status line and headers.
POST_DEADLINE_SECONDS = 10.0
# An event being posted is not due for this long, so no other worker posts it meanwhile.
LEASE_SECONDS = 60
NO_SECRET = "not sent: STATE_MANAGER_NOTIFY_SECRET is not set"


@dataclass(frozen=True)
class Delivery:
    status: int | None = None
    error: str = ""
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def deliver_due_events(*, limit: int = 100, rounds: int = 10, now: datetime | None = None) -> int:
    """Post the due events, at most `limit` a round, each round the next event of the
    orders whose event the round before delivered; returns how many were delivered."""
    now = now or timezone.now()
    secret = conf().notify_secret
    if not secret:
        held = OrderEvent.objects.filter(state=OrderEvent.State.PENDING).exclude(
            last_error=NO_SECRET
        )
        if held.update(last_error=NO_SECRET):
            logger.warning("status notifications held: STATE_MANAGER_NOTIFY_SECRET is not set")
        return 0
    allow = conf().outbound_allow
    delivered = 0
    for _ in range(rounds):
        count = sum(_deliver(event, secret.encode(), allow) for event in _take_due(limit, now))
        delivered += count
        if not count:
            break
    return delivered


def has_due_events(now: datetime) -> bool:
    return OrderEvent.objects.filter(
        state=OrderEvent.State.PENDING, next_attempt_at__lte=now
    ).exists()


def _take_due(limit: int, now: datetime) -> list[OrderEvent]:
    """The due events, each the oldest undelivered one of its order, leased to this worker
    (SKIP LOCKED on PostgreSQL, so workers take disjoint events)."""
    earlier = OrderEvent.objects.filter(
        order_id=OuterRef("order_id"), state=OrderEvent.State.PENDING, pk__lt=OuterRef("pk")
    )
    due = (
        OrderEvent.objects.filter(state=OrderEvent.State.PENDING, next_attempt_at__lte=now)
        .exclude(Exists(earlier))
        .select_related("order__snapshot")
        .order_by("next_attempt_at", "pk")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        events = list(due[:limit])
        OrderEvent.objects.filter(pk__in=[event.pk for event in events]).update(
            next_attempt_at=now + timedelta(seconds=LEASE_SECONDS)
        )
    return events


def _deliver(event: OrderEvent, secret: bytes, allow: list[str]) -> bool:
    order = event.order  # read with the event (`_take_due`), not one query per event
    if not event.url:
        try:
            event.url = notify_url(order)
        except ExpressionError as exc:
            _finish(event, Delivery(error=str(exc), refused=True))
            return False
    body = event_body(event, order)
    result = post(event.url, body, event_id=str(event.event_id), secret=secret, allow=allow)
    _finish(event, result)
    return result.ok


def notify_url(order: Order) -> str:
    """The blueprint's `notify_url` for this order, rendered over its input and its fields."""
    template = order.snapshot.definition["blueprint"]["notify_url"]
    context = {
        "input": order.payload,
        "order": order_name(
            order_id=order.order_id,
            workflow=order.workflow,
            created_at=order.created_at.isoformat(),
            run=order.run,
        ),
    }
    return str(render(template, context, "notify_url"))


def event_body(event: OrderEvent, order: Order) -> bytes:
    """The event's JSON, as posted and signed (contract section 9)."""
    return json.dumps(
        {
            "id": str(event.event_id),
            "type": EVENT_TYPE,
            "order_id": order.order_id,
            "workflow": order.workflow,
            "status": event.status,
            "previous_status": event.previous_status,
            "step": event.step,
            "error": event.error,
            "occurred_at": event.occurred_at.isoformat(),
        }
    ).encode()


def signature(body: bytes, secret: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(url: str, body: bytes, *, event_id: str, secret: bytes, allow: list[str]) -> Delivery:
    """One signed POST of an event."""
    headers = {
        "X-StateManager-Event-Id": event_id,
        "X-StateManager-Signature": signature(body, secret, int(time.time())),
    }
    return post_json(url, body, headers=headers, allow=allow)


def post_json(url: str, body: bytes, *, headers: dict[str, str], allow: list[str]) -> Delivery:
    """One POST of JSON through the engine's guarded session (the outbound allowlist),
    ended within POST_DEADLINE_SECONDS; the answer's body unread. Alerts post through here
    too. (Resolving the host's name is timed by the system's resolver.)"""
    seconds = POST_DEADLINE_SECONDS
    with deadline(seconds) as watch:
        try:
            with session_for(allow).post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                # Each read may take longer: the deadline ends the post first.
                timeout=(seconds, seconds + 1),
                allow_redirects=False,
                stream=True,
            ) as response:
                return Delivery(status=response.status_code)
        except OutboundRefused as exc:
            return Delivery(error=str(exc), refused=True)
        except requests.RequestException as exc:
            if watch.expired or isinstance(exc, requests.Timeout):
                return Delivery(error=f"Timeout: no answer within {seconds:g}s")
            return Delivery(error=f"{type(exc).__name__}: {exc}"[:2000])


def _finish(event: OrderEvent, result: Delivery) -> None:
    """Delivered on a 2xx; else tried again later, or given up (refused by the allowlist
    or an unrenderable URL at once, anything else after MAX_ATTEMPTS)."""
    now = timezone.now()
    event.attempts += 1
    event.last_status = result.status
    event.last_error = result.error or ("" if result.ok else f"answered {result.status}")
    if result.ok:
        event.state, event.delivered_at = OrderEvent.State.DELIVERED, now
    elif result.refused or event.attempts >= MAX_ATTEMPTS:
        event.state = OrderEvent.State.FAILED
    else:
        event.next_attempt_at = now + timedelta(seconds=retry_delay(BACKOFF, event.attempts))
    event.save(
        update_fields=[
            "url",
            "attempts",
            "last_status",
            "last_error",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
