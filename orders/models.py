import re

from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    URLValidator,
    validate_email,
)
from django.db import models
from django.utils import timezone

from blueprints.models import Blueprint, WorkflowSnapshot

# Defined beside, in the orders app; imported here so Django finds them.
from orders.message_models import Message, MessageSource, MessageWait  # noqa: F401

# An alert rule's longest window: a week.
MAX_WINDOW_MINUTES = 7 * 24 * 60


class Order(models.Model):
    """One order moving through the blueprint it was created with."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        WAITING = "waiting"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    order_id = models.CharField(max_length=200, unique=True)
    workflow = models.CharField(max_length=100)
    snapshot = models.ForeignKey(WorkflowSnapshot, on_delete=models.PROTECT, related_name="orders")
    payload = models.JSONField()
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    current_step = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    # The step whose failure the run last took (its `on_failed` path or the end), and the
    # HTTP status of that failure: set by the engine, cleared by a new run.
    failed_step = models.CharField(max_length=200, blank=True)
    failed_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # That failure's own reason (`HTTP 402: card declined`), beside `error`, which is the
    # text the order ended with (an end step's `error` when `on_failed` led to one).
    failed_reason = models.TextField(blank=True, default="", db_default="")
    run = models.PositiveIntegerField(default=1)
    # Attempts made at `current_step` in this run, and steps executed in this run (loop guard).
    attempt = models.PositiveIntegerField(default=0)
    steps_in_run = models.PositiveIntegerField(default=0)
    # Engine state of the current step: parallel branch progress, callback, retry details.
    step_state = models.JSONField(default=dict, blank=True)
    # Where "reprocess from the failed step" resumes: {"step": id, "data": data before it}.
    # Set by the engine when a step fails after its retries; empty until one does.
    resume_point = models.JSONField(default=dict, blank=True)
    # When a pending or waiting order is next due; null when it is not due at all.
    due_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # The blueprint's `concurrency_key` rendered when the order was created: while one
    # order of the workflow with this key runs, the others stay due. Empty: no key, also
    # for rows written by plain SQL that leaves the column out (the database default).
    concurrency_key = models.CharField(max_length=500, blank=True, default="", db_default="")
    # The W3C traceparent of the webhook that posted the order: the parent of the spans of
    # its turns, whichever worker runs them (core/tracing.py).
    trace_parent = models.CharField(max_length=55, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The claim reads due orders oldest first: an index of just the claimable ones
            # lets it stop after `limit` entries however many finished orders there are.
            models.Index(
                fields=["due_at", "id"],
                name="order_claimable_due",
                condition=models.Q(status__in=["pending", "waiting"]),
            ),
            models.Index(fields=["status", "lease_expires_at"], name="order_lease"),
            models.Index(fields=["workflow", "created_at"], name="order_workflow_created"),
            models.Index(fields=["created_at"], name="order_created"),
            models.Index(
                fields=["failed_step", "created_at"],
                name="order_failed_step",
                condition=~models.Q(failed_step=""),
            ),
        ]
        constraints = [
            # Serves the claim's "no running order holds this key" and makes it hold across
            # the fleet: of two claims racing for one key, the second's UPDATE fails.
            models.UniqueConstraint(
                fields=["workflow", "concurrency_key"],
                name="order_running_key",
                condition=models.Q(status="running") & ~models.Q(concurrency_key=""),
            ),
        ]
        permissions = [
            ("reprocess_order", "Can reprocess and cancel orders"),
            ("edit_order", "Can edit an order's payload and data"),
        ]

    def __str__(self) -> str:
        return self.order_id


class StepLog(models.Model):
    """One entry of an order's log: a step attempt, or a reprocess / cancel / callback."""

    # What the API shows of an entry, and what a retention export keeps.
    REPORTED_FIELDS = [
        "run",
        "step",
        "attempt",
        "kind",
        "started_at",
        "duration_ms",
        "request",
        "response",
        "outcome",
        "error",
        "actor",
    ]

    class Kind(models.TextChoices):
        ATTEMPT = "attempt"
        STEP = "step"
        CALLBACK = "callback"
        MESSAGE = "message"
        REPROCESS = "reprocess"
        CANCEL = "cancel"
        EDIT = "edit"

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        RETRYING = "retrying"
        WAITING = "waiting"
        INTERRUPTED = "interrupted"
        REQUESTED = "requested"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="log")
    run = models.PositiveIntegerField()
    step = models.CharField(max_length=200, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ATTEMPT)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    request = models.JSONField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True)
    # Exactly how the run's data changed, for a reprocess from a named step
    # (orders/step_data.py): a succeeded step's saved values, the data a reprocess began
    # a run with, what an edit did to the data. `response` shows them cut to the limit.
    saved = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["order", "id"]
        indexes = [
            models.Index(fields=["order", "id"], name="steplog_order"),
            models.Index(fields=["outcome", "started_at"], name="steplog_outcome_started"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} run {self.run} {self.step} #{self.attempt} {self.outcome}"


class Callback(models.Model):
    """A one-time token an outside system posts to, to resume an order waiting at a step."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        EXPIRED = "expired"

    token = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="callbacks")
    run = models.PositiveIntegerField()
    step = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    data = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.order_id} {self.step} {self.status}"


class BatchRun(models.Model):
    """One batch of the scheduler: when it ran and how many orders it advanced."""

    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    orders = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="batchrun_started")]

    def __str__(self) -> str:
        return f"batch {self.started_at:%Y-%m-%d %H:%M:%S} ({self.orders} orders)"


class BatchLane(models.Model):
    """A batch lane: batches one after another, each claimed `INTERVAL_SECONDS` after the
    previous one ended. Lanes run side by side in django-q2 workers of any cluster, one
    turn at a time, under a lease like an order's claim."""

    number = models.PositiveIntegerField(primary_key=True)
    holder = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    turn_started_at = models.DateTimeField(null=True, blank=True)
    turn_orders = models.PositiveIntegerField(default=0)
    # When a task for the lane's next turn went onto the broker; cleared when a turn begins.
    queued_at = models.DateTimeField(null=True, blank=True)
    next_batch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"lane {self.number}" + (f" held by {self.holder}" if self.holder else "")

    @property
    def worker(self) -> str:
        """The worker of the turn in progress: its holder without the turn's own token."""
        return self.holder.rsplit(":", 1)[0]


class BulkJob(models.Model):
    """A bulk reprocess, cancel or edit: its selection frozen when it is prepared (the orders
    counted are the orders acted on), run as a django-q2 task with its progress here."""

    class Kind(models.TextChoices):
        REPROCESS = "reprocess"
        CANCEL = "cancel"
        EDIT = "edit"

    class Status(models.TextChoices):
        PREPARED = "prepared"  # selection frozen, waiting for a confirmation
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        DISCARDED = "discarded"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREPARED)
    # The filters or order ids as given, and the operation's options (from, version, ...).
    selection = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"


class BulkJobOrder(models.Model):
    """One order of a job's frozen selection."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="entries")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "order"], name="unique_bulk_job_order")
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} order {self.order_id}"


class OrderEvent(models.Model):
    """A status change of an order whose blueprint names a `notify_url`, and its delivery
    there: recorded with the change itself, posted (signed) until the receiver says 2xx."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    event_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=16)
    previous_status = models.CharField(max_length=16)
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    occurred_at = models.DateTimeField()
    # The notify_url as rendered for this order (when first due), and where it points
    # (scheme, host and port): deliverers share their posts out fairly between receivers.
    url = models.TextField(blank=True)
    receiver = models.CharField(max_length=300, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The deliverer posting it now; its lease is `next_attempt_at` (orders.notifications).
    claim = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["order", "id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="orderevent_due"),
            models.Index(fields=["order", "id"], name="orderevent_order"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.previous_status} -> {self.status} ({self.state})"


class AlertRule(models.Model):
    """Alert someone when failed orders pile up: once `threshold` orders of the rule's scope
    (blueprint, step that failed, error text) failed within the last `window_minutes`, one
    alert goes out by e-mail or webhook, and no other for the same rule within the window."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    workflow = models.CharField(
        max_length=100, blank=True, help_text="The blueprint's slug; empty for any blueprint."
    )
    step = models.CharField(
        max_length=200,
        blank=True,
        help_text="The id of the step that failed (the order list's failed step); empty for "
        "any step.",
    )
    error_contains = models.CharField(
        max_length=500,
        blank=True,
        help_text="Text the failed attempt's reason (HTTP 402: card declined) or the "
        "order's error contains, in any case; empty for any error.",
    )
    threshold = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1)],
        help_text="Alert once this many orders failed within the window.",
    )
    window_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_MINUTES)],
        help_text="The window, in minutes: the failures counted, and at most one alert in it.",
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    email_to = models.TextField(
        "e-mail to",
        blank=True,
        help_text="For e-mail: the addresses, separated by commas or lines.",
    )
    webhook_url = models.URLField(
        "webhook URL",
        max_length=2000,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="For a webhook: the http(s) URL the alert is POSTed to as JSON.",
    )
    # When the last alert went out and how many failed orders it counted; why the last
    # attempt to send failed, empty once one went out.
    last_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_count = models.PositiveIntegerField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def recipients(self) -> list[str]:
        """The addresses of `email_to`."""
        return [part for part in re.split(r"[\s,;]+", self.email_to) if part]

    def clean(self) -> None:
        errors = {}
        # A rule kept on a blueprint deleted since may still be changed (disabled, say).
        unchanged = (
            self.pk is not None
            and AlertRule.objects.filter(pk=self.pk, workflow=self.workflow).exists()
        )
        if (
            self.workflow
            and not unchanged
            and not Blueprint.objects.filter(slug=self.workflow).exists()
        ):
            errors["workflow"] = f'No blueprint "{self.workflow}"; leave it empty for any.'
        if self.channel == self.Channel.EMAIL:
            bad = [address for address in self.recipients if not _is_email(address)]
            if bad:
                errors["email_to"] = f"Not an e-mail address: {', '.join(bad)}."
            elif not self.recipients:
                errors["email_to"] = "Give at least one address for an e-mail alert."
        if self.channel == self.Channel.WEBHOOK and not self.webhook_url:
            errors["webhook_url"] = "Give the URL to post to for a webhook alert."
        if errors:
            raise ValidationError(errors)


def _is_email(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


class MetricCount(models.Model):
    """A fleet-wide count only processes know (`orders.counters`), kept here when the
    project has no Redis: one row per metric and labels, added to in batches."""

    key = models.CharField(max_length=400, primary_key=True)
    value = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.key} = {self.value:g}"
