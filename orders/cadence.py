"""The cadence of batches (contract section 5), for whatever drives the orders: a batch
lane's turn on a django-q2 worker (orders/lanes.py) or the `process_orders` loop.

- **Drain.** A batch that claimed orders is followed by the next one at once (after
  STATE_MANAGER_BATCH_PAUSE_SECONDS, default 0): a backlog drains at the pace of the
  called APIs, one batch in memory at a time. A full claim also rings the bell
  (`orders.batch`), so a resting lane joins the drain.
- **Rest.** A batch that found nothing rests until a bell rings (a new order, a
  reprocess, a callback, a resumed blueprint or host: `core.doorbell`), the soonest
  order that is not due yet comes due (a retry, a rest, a hold), or the interval passes.
- **Notifications.** While it drives orders, a `Notifier` thread beside it posts the
  status notifications as soon as their change commits (the EVENTS bell).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from core import doorbell
from core.conf import conf
from orders.batch import BatchReport
from orders.claims import next_due_at, work_is_due
from orders.notifications import deliver_due_events, has_due_events, next_event_due_at

logger = logging.getLogger(__name__)

# After a failed delivery round (the database, say), the notifier waits this long.
NOTIFIER_BACKOFF_SECONDS = 5.0


def follows_at_once(report: BatchReport, stop: threading.Event) -> bool:
    """Whether the next batch follows this one at once (it claimed orders: more may be
    due), after the configured pause."""
    if not report.claimed:
        return False
    config = conf()
    if config.batch_pause_seconds > 0:
        stop.wait(config.batch_pause_seconds)
    return True


def rest_seconds(now=None) -> float:
    """How long an idle driver rests at most: until the soonest order that is not due yet
    comes due, and never longer than the interval."""
    now = now or timezone.now()
    seconds = float(conf().interval_seconds)
    soonest = next_due_at(now)
    if soonest is not None:
        seconds = min(seconds, max(0.0, (soonest - now).total_seconds()))
    return seconds


def rest(stop: threading.Event, *, until: float = math.inf) -> bool:
    """Rest until work arrives or comes due, or `until` (time.monotonic()); True when
    woken by work."""
    seconds = min(rest_seconds(), until - time.monotonic())
    return doorbell.wait(doorbell.ORDERS, seconds, look=work_is_due, stop=stop)


class Notifier:
    """A thread posting the due status notifications, woken by the EVENTS bell, while
    the driver it is started by runs (`with Notifier(): ...`)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="notifier", daemon=True)

    def __enter__(self) -> Notifier:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        # Joined, so no thread outlives the turn with a database connection; its blocking
        # pops last a second at most, so this takes a second or two.
        self.stop.set()
        self.thread.join()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    deliver_due_events(wait_seconds=1.0)
                except (OperationalError, InterfaceError) as exc:
                    logger.warning("notifications: database unavailable (%s); waiting", exc)
                    connections.close_all()
                    self.stop.wait(NOTIFIER_BACKOFF_SECONDS)
                    continue
                except Exception:
                    logger.exception("notifications: delivery failed; trying again shortly")
                    connections.close_all()
                    self.stop.wait(NOTIFIER_BACKOFF_SECONDS)
                    continue
                rang = doorbell.wait(
                    doorbell.EVENTS, self.rest_seconds(), look=self.events_due, stop=self.stop
                )
                if rang and self.stop.is_set():
                    doorbell.ring_now(doorbell.EVENTS)  # the ring is another notifier's now
        finally:
            connections.close_all()

    @staticmethod
    def rest_seconds() -> float:
        """Until the soonest event that is not due yet comes due, at most the interval."""
        now = timezone.now()
        # A second at least: with STATE_MANAGER_INTERVAL_SECONDS=0 it must not spin.
        seconds = max(1.0, float(conf().interval_seconds))
        soonest = next_event_due_at(now) if conf().notify_secret else None
        if soonest is not None:
            seconds = min(seconds, max(0.0, (soonest - now).total_seconds()))
        return seconds

    @staticmethod
    def events_due() -> bool:
        # Without a secret nothing can be sent: the events wait for one, a round an interval.
        return bool(conf().notify_secret) and has_due_events(timezone.now())
