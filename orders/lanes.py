"""Batch lanes: how the fleet runs batches side by side.

A lane is the contract's batch loop: claim at most BATCH_SIZE due orders, run them
CONCURRENCY at a time, wait for all, claim again INTERVAL_SECONDS after that batch ended.
The fleet runs `lane_count()` lanes, each in turns of about TURN_SECONDS on whichever
django-q2 worker takes the turn's task from the broker (any qcluster, any machine):

- A turn holds the lane's lease (renewed by a heartbeat, like an order's claim), so two
  workers never run one lane; a lane whose worker died is free again when its lease runs
  out, and the next dispatch hands it out anew.
- At the end of its turn a lane queues its next turn itself, behind whatever other tasks
  wait, so a lane holds a worker for one turn at a time and other tasks get their turn.
- An idle lane sleeps out the interval between its claims: one claim query per lane per
  interval; a lane whose next batch is further away than a turn is left to the dispatch.
- `dispatch_lanes` (the django-q2 schedule, every minute) queues a turn for every lane
  that is neither held nor queued (or whose queued task was lost with its worker).
- A batch that fails on an unexpected error (a bug, not the database's) ends the turn and
  backs the lane off: its next batch no sooner than ERROR_BACKOFF_SECONDS (or the interval)
  from now, queued by the dispatch, so a batch that keeps failing is no hot loop. A
  database error leaves the turn as it is: the lease runs out, and the dispatch hands
  the lane out anew.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone
from django_q.status import Stat
from django_q.tasks import async_task

from core.conf import conf
from orders.batch import Heartbeat, run_batch, worker_name
from orders.models import BatchLane

logger = logging.getLogger(__name__)

TURN_SECONDS = 60.0
LANE_GROUP = "batch lanes"
# After a batch failed on an unexpected error, its lane's next batch is this far away at
# least (the interval when longer).
ERROR_BACKOFF_SECONDS = TURN_SECONDS


def lane_count() -> int:
    """STATE_MANAGER_MAX_PARALLEL_BATCHES, or with 0, the workers of every running cluster
    (as django-q2's cluster stats report them), or this cluster's when none report."""
    configured = conf().max_parallel_batches
    if configured > 0:
        return configured
    return fleet_workers() or int(settings.Q_CLUSTER.get("workers") or 1)


def fleet_workers() -> int:
    """Workers of the running clusters. The Redis broker shares each cluster's stats;
    the ORM broker keeps them in a per-process cache, so there it knows of none."""
    try:
        stats = Stat.get_all()
    except Exception:  # a broker without stats, or one that is down
        logger.warning("could not read the clusters' stats", exc_info=True)
        return 0
    return sum(len(stat.workers) for stat in stats)


def _free(now: datetime) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def dispatch_lanes(*, turn_seconds: float = TURN_SECONDS) -> list[int]:
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
    # worker), and due within the next dispatch.
    needy = (
        BatchLane.objects.filter(number__lte=count)
        .filter(_free(now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - lease))
        .filter(
            Q(next_batch_at__isnull=True)
            | Q(next_batch_at__lte=now + timedelta(seconds=turn_seconds))
        )
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
    the lane itself)."""
    return LaneTurn(number).run()


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
        next_batch_at = lane.next_batch_at
        deadline = time.monotonic() + self.turn_seconds
        try:
            with Heartbeat(self.renew, interval=max(0.5, self.lease_seconds / 3), name="lane"):
                while not self.lost.is_set():
                    wait = (next_batch_at - timezone.now()).total_seconds() if next_batch_at else 0
                    if wait > 0:
                        if time.monotonic() + wait > deadline:
                            break
                        time.sleep(wait)
                    try:
                        report = run_batch()
                    except DatabaseError:  # left to the lease (see above)
                        raise
                    except Exception:
                        next_batch_at = self.batch_failed()
                        break
                    self.batches += 1
                    next_batch_at = self.batch_ended(report.claimed)
                    if time.monotonic() >= deadline:
                        break
        finally:
            self.end(next_batch_at)
        if self.failed:
            return f"lane {self.number}: {self.batches} batches, then one failed"
        return f"lane {self.number}: {self.batches} batches"

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

    def batch_ended(self, claimed: int) -> datetime:
        next_batch_at = timezone.now() + timedelta(seconds=self.interval)
        BatchLane.objects.filter(number=self.number, holder=self.holder).update(
            next_batch_at=next_batch_at, turn_orders=F("turn_orders") + claimed
        )
        return next_batch_at

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

    def end(self, next_batch_at: datetime | None) -> None:
        """Release the lane, and queue its next turn when it is due within a turn (else
        the dispatch queues it when it is; after a failed batch, always the dispatch)."""
        now = timezone.now()
        requeue = (
            not self.lost.is_set()
            and not self.failed
            and self.number <= lane_count()
            and (
                next_batch_at is None or next_batch_at <= now + timedelta(seconds=self.turn_seconds)
            )
        )
        released = BatchLane.objects.filter(number=self.number, holder=self.holder).update(
            holder="",
            lease_expires_at=None,
            turn_started_at=None,
            queued_at=now if requeue else None,
        )
        if released and requeue:
            queue_turn(self.number)
