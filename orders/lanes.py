"""Batch lanes: how the fleet runs batches side by side.

A lane is the contract's batch loop, paced by orders/cadence.py: claim at most
BATCH_SIZE due orders, run them CONCURRENCY at a time, wait for all, and claim the next
batch at once while orders are due; when none are, rest until work arrives or comes due
(at most INTERVAL_SECONDS). The fleet runs `lane_count()` lanes, each in turns of about
TURN_SECONDS on whichever django-q2 worker takes the turn's task from the broker (any
qcluster, any machine):

- A turn holds the lane's lease (renewed by a heartbeat, like an order's claim), so two
  workers never run one lane; a lane whose worker died is free again when its lease runs
  out, and the next dispatch hands it out anew.
- A lane rests inside its turn, so it is always there to wake; at the end of its turn it
  queues its next turn itself. Each cluster keeps one worker free of lanes (`lanes_for`),
  so that the next turn, the dispatch, status notifications' retries, alert checks and
  bulk jobs never wait for a lane's turn to end.
- While its turn runs, a lane's `Notifier` posts status notifications as they happen.
- `dispatch_lanes` (the django-q2 schedule, every minute) queues a turn for every lane
  that is neither held nor queued (or whose queued task was lost with its worker).
- A batch that fails on an unexpected error (a bug, a schema not migrated yet: anything
  but the database being unreachable) ends the turn and backs the lane off: its next
  batch no sooner than ERROR_BACKOFF_SECONDS (or the interval) from now, queued by the
  dispatch, so a batch that keeps failing is no hot loop. A database that cannot be
  reached ends the turn where it stands: the lease runs out, and the dispatch hands the
  lane out anew.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F, Q
from django.utils import timezone
from django_q.status import Stat
from django_q.tasks import async_task

from core.conf import conf
from orders.batch import Heartbeat, run_batch, worker_name
from orders.cadence import Notifier, follows_at_once, rest
from orders.models import BatchLane

logger = logging.getLogger(__name__)

TURN_SECONDS = 60.0
LANE_GROUP = "batch lanes"
# After a batch failed on an unexpected error, its lane's next batch is this far away at
# least (the interval when longer).
ERROR_BACKOFF_SECONDS = 60.0


def lane_count() -> int:
    """STATE_MANAGER_MAX_PARALLEL_BATCHES, or with 0, the lanes every running cluster's
    workers allow (as django-q2's cluster stats report them), or this cluster's when
    none report."""
    configured = conf().max_parallel_batches
    if configured > 0:
        return configured
    return fleet_lanes() or lanes_for(int(settings.Q_CLUSTER.get("workers") or 1))


def lanes_for(workers: int) -> int:
    """The lanes a cluster of `workers` runs: all its workers but one, kept for the other
    tasks (a lane's next turn, the dispatch, alert checks, bulk jobs); one at least.

    >>> lanes_for(1), lanes_for(2), lanes_for(3), lanes_for(8)
    (1, 1, 2, 7)
    """
    return max(1, workers - 1)


def fleet_stats() -> list:
    """The running clusters' stats. The Redis broker shares each cluster's; the ORM
    broker keeps them in a per-process cache, so there it knows of none."""
    try:
        return list(Stat.get_all())
    except Exception:  # a broker without stats, or one that is down
        logger.warning("could not read the clusters' stats", exc_info=True)
        return []


def fleet_workers() -> int:
    """Workers of the running clusters (none known on the ORM broker)."""
    return sum(len(stat.workers) for stat in fleet_stats())


def fleet_lanes() -> int:
    """Lanes of the running clusters (none known on the ORM broker)."""
    return sum(lanes_for(len(stat.workers)) for stat in fleet_stats())


def _free(now: datetime) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def dispatch_lanes() -> list[int]:
    """Queue a turn for each lane that needs one; returns their numbers."""
    count = lane_count()
    now = timezone.now()
    lease = timedelta(seconds=conf().lease_seconds)
    existing = set(BatchLane.objects.filter(number__lte=count).values_list("number", flat=True))
    BatchLane.objects.bulk_create(
        [BatchLane(number=n) for n in range(1, count + 1) if n not in existing],
        ignore_conflicts=True,
    )
    # Not held, not already queued (a queued task older than a lease went with its
    # worker), and not backed off after a failed batch.
    needy = (
        BatchLane.objects.filter(number__lte=count)
        .filter(_free(now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - lease))
        .filter(Q(next_batch_at__isnull=True) | Q(next_batch_at__lte=now))
    )
    queued = []
    for number in needy.values_list("number", flat=True):
        # Conditional, so two dispatches racing queue each lane once.
        if needy.filter(number=number).update(queued_at=now):
            queue_turn(number)
            queued.append(number)
    return queued


def run_lane(number: int) -> str:
    """The django-q2 task of one turn of batch lane `number` (queued by the dispatch or by
    the lane itself). Turns last a little less than TURN_SECONDS at random, so the lanes
    the dispatch started together do not end their turns together."""
    return LaneTurn(number, turn_seconds=TURN_SECONDS * random.uniform(0.75, 1.0)).run()


def queue_turn(number: int) -> None:
    async_task(
        run_lane, number, task_name=f"lane-{number}-{uuid.uuid4().hex[:8]}", group=LANE_GROUP
    )


@dataclass
class LaneTurn:
    """One turn of one lane in this worker."""

    number: int
    turn_seconds: float = TURN_SECONDS

    def __post_init__(self) -> None:
        config = conf()
        self.interval = config.interval_seconds
        self.lease_seconds = config.lease_seconds
        self.holder = f"{worker_name()}:{uuid.uuid4().hex[:8]}"
        self.lost = threading.Event()
        self.batches = 0
        self.failed = False

    def run(self) -> str:
        lane = self.acquire()
        if lane is None:
            return f"lane {self.number}: skipped, another worker holds it"
        deadline = time.monotonic() + self.turn_seconds
        try:
            with (
                Heartbeat(self.renew, interval=max(0.5, self.lease_seconds / 3), name="lane"),
                Notifier(),
            ):
                self.drive(deadline)
        finally:
            self.end()
        if self.failed:
            return f"lane {self.number}: {self.batches} batches, then one failed"
        return f"lane {self.number}: {self.batches} batches"

    def drive(self, deadline: float) -> None:
        """Batches as the cadence says until the turn's time is up or the lane is lost."""
        while not self.lost.is_set():
            try:
                report = run_batch(top_up=lambda: self.in_turn(deadline))
            except (OperationalError, InterfaceError):  # an outage: left to the lease
                raise
            except Exception:
                self.batch_failed()
                return
            self.batches += 1
            self.batch_ended(report.claimed)
            if time.monotonic() >= deadline:
                return
            if not follows_at_once(report, self.lost):
                rest(self.lost, until=deadline)

    def in_turn(self, deadline: float) -> bool:
        """Whether the turn goes on: its batches may still claim more orders."""
        return not self.lost.is_set() and time.monotonic() < deadline

    def acquire(self) -> BatchLane | None:
        now = timezone.now()
        BatchLane.objects.get_or_create(number=self.number)
        taken = (
            BatchLane.objects.filter(number=self.number)
            .filter(_free(now))
            .update(
                holder=self.holder,
                lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                turn_started_at=now,
                turn_orders=0,
                queued_at=None,
            )
        )
        return BatchLane.objects.get(number=self.number) if taken else None

    def renew(self) -> None:
        until = timezone.now() + timedelta(seconds=self.lease_seconds)
        held = BatchLane.objects.filter(number=self.number, holder=self.holder).update(
            lease_expires_at=until
        )
        if not held:
            logger.warning("lane %s: lease lost to another worker; ending the turn", self.number)
            self.lost.set()

    def batch_ended(self, claimed: int) -> None:
        """Count the batch's orders for the lane's turn (the dashboard and /health/ show
        them); an idle batch writes nothing."""
        if claimed:
            BatchLane.objects.filter(number=self.number, holder=self.holder).update(
                turn_orders=F("turn_orders") + claimed
            )

    def batch_failed(self) -> datetime:
        """Log the error with its traceback, once, and back the lane off."""
        delay = max(self.interval, ERROR_BACKOFF_SECONDS)
        logger.exception("lane %s: batch failed; next batch in %gs", self.number, delay)
        self.failed = True
        next_batch_at = timezone.now() + timedelta(seconds=delay)
        BatchLane.objects.filter(number=self.number, holder=self.holder).update(
            next_batch_at=next_batch_at
        )
        return next_batch_at

    def end(self) -> None:
        """Release the lane and queue its next turn (after a failed batch, or when the
        fleet needs fewer lanes, the dispatch decides)."""
        now = timezone.now()
        requeue = not self.lost.is_set() and not self.failed and self.number <= lane_count()
        released = BatchLane.objects.filter(number=self.number, holder=self.holder).update(
            holder="",
            lease_expires_at=None,
            turn_started_at=None,
            queued_at=now if requeue else None,
        )
        if released and requeue:
            queue_turn(self.number)
