"""The django-q2 entry point: batches every STATE_MANAGER_INTERVAL_SECONDS, never overlapping.

django-q2 fires the schedule about once a minute (its scheduler looks every ~30 s and
does nothing to stop two runs of one schedule overlapping). Each run takes the
scheduler's lock, and while it holds it starts a batch each time the interval has
passed since the previous batch ended, for about one tick; a run that finds the lock
held returns at once. A worker that dies loses the lock when its lease runs out.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule

from orders.batch import Heartbeat, run_batch, worker_name
from orders.models import BatchLock, BatchRun

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "State Manager batches"
SCHEDULE_FUNC = "orders.tasks.run_scheduled_batches"
LOCK_NAME = "scheduled-batches"
TICK_SECONDS = 60


def ensure_schedule() -> Schedule:
    """Create the schedule once; repeated calls (every migrate) keep exactly one."""
    schedules = list(Schedule.objects.filter(func=SCHEDULE_FUNC).order_by("pk"))
    if not schedules:
        return Schedule.objects.create(
            name=SCHEDULE_NAME,
            func=SCHEDULE_FUNC,
            schedule_type=Schedule.MINUTES,
            minutes=1,
            repeats=-1,
            next_run=timezone.now(),
        )
    keep, extra = schedules[0], schedules[1:]
    if extra:
        Schedule.objects.filter(pk__in=[schedule.pk for schedule in extra]).delete()
    return keep


def seconds_until_next_batch(interval: float) -> float:
    last = BatchRun.objects.filter(ended_at__isnull=False).order_by("-ended_at").first()
    if last is None:
        return 0.0
    return (last.ended_at + timedelta(seconds=interval) - timezone.now()).total_seconds()


def acquire_lock(holder: str, lease_seconds: float) -> bool:
    now = timezone.now()
    BatchLock.objects.get_or_create(name=LOCK_NAME)
    return bool(
        BatchLock.objects.filter(name=LOCK_NAME)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lt=now) | Q(holder=holder))
        .update(holder=holder, expires_at=now + timedelta(seconds=lease_seconds))
    )


def renew_lock(holder: str, lease_seconds: float) -> None:
    BatchLock.objects.filter(name=LOCK_NAME, holder=holder).update(
        expires_at=timezone.now() + timedelta(seconds=lease_seconds)
    )


def release_lock(holder: str) -> None:
    BatchLock.objects.filter(name=LOCK_NAME, holder=holder).update(holder="", expires_at=None)


def run_scheduled_batches(tick_seconds: float = TICK_SECONDS) -> str:
    """Run the batches due in the coming tick, unless another run of the schedule is at it."""
    config = settings.STATE_MANAGER
    interval, lease = config["INTERVAL_SECONDS"], config["LEASE_SECONDS"]
    holder = f"{worker_name()}:{uuid.uuid4().hex[:8]}"  # one per run, even in one process
    if not acquire_lock(holder, lease):
        return "skipped: a batch of the scheduler is already running"
    batches = 0
    deadline = time.monotonic() + tick_seconds
    try:
        with Heartbeat(lambda: renew_lock(holder, lease), interval=lease / 3, name="batch-lock"):
            while True:
                wait = seconds_until_next_batch(interval)
                if wait > 0:
                    if time.monotonic() + wait > deadline:
                        break
                    time.sleep(wait)
                run_batch()
                batches += 1
                if time.monotonic() >= deadline:
                    break
    finally:
        release_lock(holder)
    return f"ran {batches} batches"
