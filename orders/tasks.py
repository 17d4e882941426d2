"""The django-q2 entry points: the schedule that dispatches batch lanes, a lane's turn,
a bulk reprocess or cancel job, the daily retention purge, and the alert rules' check.

django-q2's scheduler fires the schedule on one cluster about once a minute; it queues a
turn for every lane that needs one (orders/lanes.py), and django-q2 hands each turn to
a free worker of any cluster through its broker.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from core.conf import conf
from orders import alerts
from orders.jobs import jobs_tidy

# Where tasks queued by earlier releases name a lane's turn and a bulk job.
from orders.jobs import run_bulk_job as run_bulk_job  # noqa: I001
from orders.lanes import dispatch_lanes
from orders.lanes import run_lane as run_lane
from orders.notifications import deliver_due_events, has_due_events
from orders.retention import purge_messages, purge_orders

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "State Manager batch lanes"
SCHEDULE_FUNC = "orders.tasks.dispatch"
# Names the schedule had in earlier releases, taken over on migrate.
FORMER_FUNCS = ("orders.tasks.run_scheduled_batches",)
PURGE_NAME = "State Manager retention"
PURGE_FUNC = "orders.tasks.purge"
DELIVER_FUNC = "orders.tasks.deliver_events"
ALERTS_NAME = "State Manager alert rules"
ALERTS_FUNC = "orders.tasks.check_alerts"
# Tasks queued by earlier releases name these as "orders.tasks.run_lane" and
# "orders.tasks.run_bulk_job"; the lanes and the jobs queue them as functions now.
QUEUED_BY_NAME = (run_lane, run_bulk_job)


def ensure_schedule() -> Schedule:
    """Create the schedules once; repeated calls (every migrate) keep exactly one of each."""
    if not Schedule.objects.filter(func=PURGE_FUNC).exists():
        Schedule.objects.create(
            name=PURGE_NAME,
            func=PURGE_FUNC,
            schedule_type=Schedule.DAILY,
            repeats=-1,
            next_run=timezone.now(),
        )
    if not Schedule.objects.filter(func=ALERTS_FUNC).exists():
        Schedule.objects.create(
            name=ALERTS_NAME,
            func=ALERTS_FUNC,
            schedule_type=Schedule.MINUTES,
            minutes=1,
            repeats=-1,
            next_run=timezone.now(),
        )
    schedules = list(
        Schedule.objects.filter(func__in=[SCHEDULE_FUNC, *FORMER_FUNCS]).order_by("pk")
    )
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
    if keep.func != SCHEDULE_FUNC:
        keep.func, keep.name = SCHEDULE_FUNC, SCHEDULE_NAME
        keep.save(update_fields=["func", "name"])
    return keep


def dispatch() -> str:
    """The schedule's task: queue a turn for each lane that needs one, tidy the bulk jobs
    (queue again a stalled one, discard the unconfirmed), and queue the delivery of the
    status notifications that are due."""
    queued = dispatch_lanes()
    jobs_tidy()
    if has_due_events(timezone.now()):
        async_task(DELIVER_FUNC, task_name="deliver-events", group="notifications")
    return f"queued lanes {queued}" if queued else "every lane is running or queued"


def deliver_events() -> str:
    """Post the due status notifications (queued by the dispatch when there are some)."""
    return f"delivered {deliver_due_events()} events"


def check_alerts() -> str:
    """Every minute: send the alerts of the rules whose threshold is reached."""
    return f"sent {alerts.check_alerts()} alerts"


def purge() -> str:
    """The daily task: delete finished orders older than STATE_MANAGER_RETENTION_DAYS,
    then the partners' messages no longer kept that no remaining order took (kept
    messages expire after STATE_MANAGER_MESSAGE_TTL_SECONDS whatever the retention)."""
    days = conf().retention_days
    if days < 1:
        message = "retention is off (STATE_MANAGER_RETENTION_DAYS=0)"
    else:
        result = purge_orders(older_than_days=days)
        message = f"purged {result.orders} orders and {result.log_entries} log entries"
        logger.info("retention: %s older than %s days", message, days)
    messages = purge_messages()
    if messages:
        logger.info("retention: purged %s messages from partners", messages)
    return f"{message}; purged {messages} messages"
