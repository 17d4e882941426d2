"""Delivery of status notifications (contract section 9): each `OrderEvent` recorded by
`orders.transitions` is POSTed to its blueprint's `notify_url`, signed with
STATE_MANAGER_NOTIFY_SECRET, and posted again with backoff until the receiver answers
2xx, under the outbound allowlist like every call.

`deliver_due_events` may be called often and from anywhere at once (threads, processes):

- An event is *claimed* just before its post, by one conditional UPDATE: it must still be
  pending and due, and no earlier event of its order may be pending. The claim writes a
  token and a lease (`next_attempt_at`, LEASE_SECONDS from the moment the post starts,
  longer than the post's deadline), so no other deliverer takes it meanwhile and
  `has_due_events` stays one query. The outcome is written only while the token is still
  the event's: a lease that ran out (a deliverer that died) is taken over, never undone.
- So an order's events go out one after another, and an event answered 2xx is posted once.
- Posts run on a small thread pool shared by the process, at most PER_RECEIVER at once to
  one receiver (scheme, host and port; one while it is not answering), so a slow or dead
  receiver holds its own slots, never the others'. Every post ends within
  POST_DEADLINE_SECONDS, whatever the receiver does (`orders.engine.deadlines`).

Without a secret nothing is sent: the events stay pending, saying why, until one is set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.db import connections
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from core import doorbell
from core.conf import conf
from expressions.language import ExpressionError, render
from expressions.names import order_name
from expressions.secrets import also_masked, mask, secrets_in_scope, url_secrets
from orders import counters
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
# An event being posted is not due for this long from the start of its post: far longer
# than the post's deadline, so that only a deliverer that died loses its claim.
LEASE_SECONDS = 60
# Posts in flight at once in a process, and to one receiver.
POOL_SIZE = 16
PER_RECEIVER = 2
# Due events read at a time.
PAGE = 100
NO_SECRET = "not sent: STATE_MANAGER_NOTIFY_SECRET is not set"


@dataclass(frozen=True)
class Delivery:
    status: int | None = None
    error: str = ""
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def unanswered(self) -> bool:
        return self.status is None and not self.refused


def deliver_due_events(
    *, limit: int = 1000, now: datetime | None = None, wait_seconds: float | None = None
) -> int:
    """Post the due events, at most `limit`, each order's next one as soon as the one
    before is delivered; returns how many were delivered (answered 2xx).

    Posts start within POST_DEADLINE_SECONDS of the call and each ends within that, so the
    call returns within twice that at most; with `wait_seconds`, within about that long,
    the posts still in flight finishing on the pool (their outcome recorded, not counted).
    `now` is the time events are judged due at (default: the moment each is read)."""
    secret = conf().notify_secret
    if not secret:
        held = OrderEvent.objects.filter(state=OrderEvent.State.PENDING).exclude(
            last_error=NO_SECRET
        )
        if held.update(last_error=NO_SECRET):
            logger.warning("status notifications held: STATE_MANAGER_NOTIFY_SECRET is not set")
        return 0
    return Round(secret.encode(), conf().outbound_allow, now, limit).run(wait_seconds)


def has_due_events(now: datetime) -> bool:
    """Whether an event could be posted now: due, and the first pending one of its order
    (one blocked behind an earlier event that waits for a retry is not)."""
    return (
        OrderEvent.objects.filter(state=OrderEvent.State.PENDING, next_attempt_at__lte=now)
        .exclude(earlier_pending())
        .exists()
    )


def next_event_due_at(now: datetime) -> datetime | None:
    """When the soonest pending event that is not due yet comes due (a retry, or a post
    whose claim runs out): where a resting notifier's rest ends at the latest."""
    return (
        OrderEvent.objects.filter(state=OrderEvent.State.PENDING, next_attempt_at__gt=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


class Posts:
    """The process's posts in flight: its thread pool, and the slots each receiver holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.events: set[int] = set()
        self.silent: set[str] = set()  # receivers whose last post got no answer
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def pool(self) -> ThreadPoolExecutor:
        with self.lock:
            if self._pool is None or self._pid != os.getpid():  # none survives a fork
                self._pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="notify")
                self._pid = os.getpid()
                self.in_flight.clear()
                self.events.clear()
            return self._pool

    def slots(self, receiver: str) -> int:
        return 1 if receiver in self.silent else PER_RECEIVER

    def busy(self) -> list[str]:
        with self.lock:
            return [r for r, count in self.in_flight.items() if count >= self.slots(r)]

    def take(self, event: OrderEvent) -> bool:
        with self.lock:
            if event.pk in self.events or self.in_flight[event.receiver] >= self.slots(
                event.receiver
            ):
                return False
            self.events.add(event.pk)
            self.in_flight[event.receiver] += 1
            return True

    def give_back(self, event: OrderEvent, result: Delivery | None) -> None:
        with self.lock:
            self.events.discard(event.pk)
            self.in_flight[event.receiver] -= 1
            if not self.in_flight[event.receiver]:
                del self.in_flight[event.receiver]
            if result is not None and result.unanswered:
                self.silent.add(event.receiver)
            elif result is not None:
                self.silent.discard(event.receiver)


posts = Posts()


class Round:
    """One call's posts: it reads the due events, hands each to the pool when its receiver
    has a free slot, and reads again as posts end (an order's next event is due then)."""

    def __init__(self, secret: bytes, allow: list[str], now: datetime | None, limit: int):
        self.secret, self.allow, self.now, self.limit = secret, allow, now, limit
        self.seen: set[int] = set()
        self.unanswered: set[str] = set()  # receivers this round posts no more to
        self.in_flight: dict[Future, OrderEvent] = {}
        self.delivered = 0

    def run(self, wait_seconds: float | None) -> int:
        started = time.monotonic()
        self.start_until = started + POST_DEADLINE_SECONDS
        wait_until = None if wait_seconds is None else started + wait_seconds
        while True:
            while self.start_posts():
                pass
            if not self.in_flight:
                break
            timeout = None if wait_until is None else wait_until - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            done, _ = wait(list(self.in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                self.ended(self.in_flight.pop(future), future.result())
        return self.delivered

    def start_posts(self) -> bool:
        """Hand the due events to the pool; true when some were first read (their receiver
        just known), so that a read skipping the busy receivers may find more."""
        room = self.limit - len(self.seen)
        if room <= 0 or time.monotonic() > self.start_until:
            return False
        skip = {*posts.busy(), *self.unanswered}
        events, rendered = due_events(self.now, exclude=self.seen, receivers=skip, count=room)
        pool = posts.pool()
        for event in events:
            if event.receiver in self.unanswered or not posts.take(event):
                continue
            self.seen.add(event.pk)
            future = pool.submit(self.post, event)
            self.in_flight[future] = event
        return rendered

    def post(self, event: OrderEvent) -> Delivery | None:
        """On a pool thread: claim the event, post it, record the outcome."""
        result = None
        try:
            if time.monotonic() <= self.start_until:  # else it waited too long for a thread
                result = deliver(event, self.secret, self.allow, self.now)
            return result
        except Exception:
            logger.exception("event %s: delivery failed", event.event_id)
            return None
        finally:
            posts.give_back(event, result)
            connections.close_all()  # an idle pool thread holds no connection

    def ended(self, event: OrderEvent, result: Delivery | None) -> None:
        if result is None:
            return
        self.delivered += result.ok
        if result.unanswered:
            self.unanswered.add(event.receiver)


def earlier_pending() -> Exists:
    """An earlier event of the same order is still pending: this one must wait for it."""
    return Exists(
        OrderEvent.objects.filter(
            order_id=OuterRef("order_id"), state=OrderEvent.State.PENDING, pk__lt=OuterRef("pk")
        )
    )


def due_events(
    now: datetime | None, *, exclude: set[int], receivers: set[str], count: int
) -> tuple[list[OrderEvent], bool]:
    """The due events, each the oldest pending one of its order, but those of `exclude`
    and of `receivers`; the URL rendered for those read the first time (one given up at
    once when it does not render). Also whether any was read the first time."""
    due = (
        OrderEvent.objects.filter(
            state=OrderEvent.State.PENDING, next_attempt_at__lte=now or timezone.now()
        )
        .exclude(earlier_pending())
        .exclude(pk__in=exclude)
        .exclude(receiver__in=receivers)
        .select_related("order__snapshot")
        .order_by("next_attempt_at", "pk")
    )
    events, rendered = [], False
    for event in due[: min(count, PAGE)]:
        if not event.url:
            rendered = True
            if not with_url(event):
                continue
        events.append(event)
    return events, rendered


def with_url(event: OrderEvent) -> bool:
    """Render and keep the event's URL and receiver; an unrenderable URL gives it up."""
    try:
        event.url = notify_url(event.order)
    except ExpressionError as exc:
        OrderEvent.objects.filter(pk=event.pk, url="", claim=None).update(
            state=OrderEvent.State.FAILED, attempts=F("attempts") + 1, last_error=str(exc)
        )
        return False
    parts = urlsplit(event.url)
    event.receiver = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()[:300]
    OrderEvent.objects.filter(pk=event.pk, url="").update(url=event.url, receiver=event.receiver)
    return True


def deliver(
    event: OrderEvent, secret: bytes, allow: list[str], now: datetime | None
) -> Delivery | None:
    """Claim the event, post it and record the outcome; None when another deliverer has
    it (or an earlier event of its order came back)."""
    token = claim(event, now)
    if token is None:
        return None
    body = event_body(event, event.order)
    with also_masked(url_secrets(event.url)):  # in what the post logs meanwhile
        result = post(event.url, body, event_id=str(event.event_id), secret=secret, allow=allow)
    if not finish(event, token, result):
        logger.warning("event %s: its claim ran out during its post", event.event_id)
    return result


def claim(event: OrderEvent, now: datetime | None) -> uuid.UUID | None:
    """Take the event for one post: true for at most one deliverer at a time (the UPDATE's
    condition is read again under the row's lock), and only while no earlier event of its
    order is pending."""
    at = now or timezone.now()
    token = uuid.uuid4()
    taken = (
        OrderEvent.objects.filter(
            pk=event.pk, state=OrderEvent.State.PENDING, next_attempt_at__lte=at
        )
        .exclude(earlier_pending())
        .update(
            claim=token,
            next_attempt_at=max(at, timezone.now()) + timedelta(seconds=LEASE_SECONDS),
        )
    )
    return token if taken else None


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
            return Delivery(error=without_secrets(str(exc), url), refused=True)
        except requests.RequestException as exc:
            if watch.expired or isinstance(exc, requests.Timeout):
                return Delivery(error=f"Timeout: no answer within {seconds:g}s")
            return Delivery(error=without_secrets(f"{type(exc).__name__}: {exc}", url)[:2000])


def without_secrets(text: str, url: str) -> str:
    """An error's text as stored (`last_error`) and logged: no secret of the environment,
    nor the URL's token (`url_secrets`) in any form `requests` or urllib3 quote it in."""
    return mask(text, [*secrets_in_scope(), *url_secrets(url)])


def finish(event: OrderEvent, token: uuid.UUID, result: Delivery) -> bool:
    """Record the post's outcome, if the claim is still this deliverer's: delivered on a
    2xx; else due again later, or given up (refused by the allowlist at once, anything else
    after MAX_ATTEMPTS)."""
    now = timezone.now()
    outcome = {
        "claim": None,
        "attempts": F("attempts") + 1,
        "last_status": result.status,
        "last_error": result.error or ("" if result.ok else f"answered {result.status}"),
    }
    if result.ok:
        outcome.update(state=OrderEvent.State.DELIVERED, delivered_at=now)
    elif result.refused or event.attempts + 1 >= MAX_ATTEMPTS:
        outcome.update(state=OrderEvent.State.FAILED)
    else:
        delay = timedelta(seconds=retry_delay(BACKOFF, event.attempts + 1))
        outcome.update(next_attempt_at=now + delay)
    recorded = OrderEvent.objects.filter(pk=event.pk, claim=token).update(**outcome) == 1
    if recorded:
        delivered = outcome.get("state", "retrying")
        counters.add("notification_deliveries", outcome=delivered)
    if recorded and "state" in outcome:
        doorbell.ring_now(doorbell.EVENTS)  # the order's next event, if any, is due now
    return recorded
