"""Every change of an order's state, in one place: its status, its current step, its claim
and the log rows that record each change.

The runner writes through `ClaimedOrder` (each write conditional on the claim token of its
turn), the batch claims with `mark_claimed` and releases with `release_after_error`, and
a callback wakes a waiting order; the services start new runs and cancel, one order or a
thousand at a time, set-based (a few statements for a thousand orders as for one).
Nothing else writes `Order.status`, so a rule about transitions has one home: each
change of an order whose blueprint names a `notify_url` records an `OrderEvent` in the
same transaction (`insert_events`), which `orders.notifications` then delivers.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Case, F, JSONField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from core import doorbell
from definitions import graph
from expressions.secrets import mask
from orders.bulk_rows import insert_events, insert_requested_logs
from orders.models import Callback, MessageWait, Order, OrderEvent, StepLog
from orders.rows import (
    insert_log_while_claimed,
    insert_row,
    update_rows,
    write_lock,
    write_log,
    write_order,
    write_transaction,
)

# The status the flow graph's ends (definitions.graph) leave an order in.
ENDED_AS = {graph.COMPLETED: Order.Status.COMPLETED, graph.FAILED: Order.Status.FAILED}

INTERNAL_ERROR = "internal error"
MAX_INTERNAL_ERRORS = 3


class LostClaim(Exception):
    """The order's claim was taken over by another worker; this turn must stop writing."""


def log_entry(
    *, order_pk: int, run: int, step: str, kind: str, outcome: str, **fields: Any
) -> StepLog:
    """One row of an order's log (not yet saved): an attempt, a step, a callback, a
    reprocess or a cancel."""
    return StepLog(order_id=order_pk, run=run, step=step, kind=kind, outcome=outcome, **fields)


# Claims.


def mark_claimed(tokens: dict[int, uuid.UUID], *, now: datetime, lease_until: datetime) -> None:
    """Running, under a lease: one UPDATE for the whole claim, each row its own token.

    Plain SQL: the ORM's `Case(When(...))` for a hundred rows costs tens of milliseconds
    of CPU to build. The rows cannot change in between: they are locked (PostgreSQL) or
    the transaction holds SQLite's write lock from its start. Pending and waiting orders
    that notify get their event first, from their status before the claim.
    """
    insert_events(
        list(tokens),
        now=now,
        status=Order.Status.RUNNING,
        where_status=(Order.Status.PENDING, Order.Status.WAITING),
    )
    db = connections[DEFAULT_DB_ALIAS]
    field = Order._meta.get_field
    quote = db.ops.quote_name
    whens = " ".join(["WHEN %s THEN %s"] * len(tokens))
    placeholders = ", ".join(["%s"] * len(tokens))
    sql = (
        f"UPDATE {quote(Order._meta.db_table)} SET {quote('status')} = %s, "
        f"{quote('claim_token')} = CASE {quote('id')} {whens} END, "
        f"{quote('lease_expires_at')} = %s, {quote('updated_at')} = %s "
        f"WHERE {quote('id')} IN ({placeholders})"
    )
    params: list = [Order.Status.RUNNING.value]
    for pk, token in tokens.items():
        params += [pk, field("claim_token").get_db_prep_value(token, db)]
    params += [
        field("lease_expires_at").get_db_prep_value(lease_until, db),
        field("updated_at").get_db_prep_value(now, db),
        *tokens,
    ]
    with db.cursor() as cursor:
        cursor.execute(sql, params)


class ClaimedOrder:
    """The writes of one turn on an order it claimed, each made only while the claim holds.

    Log rows are queued and written with the next write of the order. What is written
    comes masked from the runner (`orders.engine.outcomes.masked_outcome`) and the journal.
    `notify`: the order's workflow names a `notify_url`, so a status written (the order
    is `running` all through a turn) records its event in the same transaction.
    """

    def __init__(self, order_pk: int, claim_token: uuid.UUID, *, notify: bool):
        self.order_pk = order_pk
        self.notify = notify
        self.claim_token = claim_token
        self.cancel_requested = False
        self.close_callbacks = False
        # The order's update after a step that is followed by a call, written with that
        # call's attempt row (one commit per step, not two).
        self.deferred: dict[str, Any] = {}
        self._pending_logs: list[StepLog] = []
        self._lock = threading.Lock()

    def queue_log(self, entry: StepLog) -> None:
        with self._lock:
            self._pending_logs.append(entry)

    def defer(self, **fields: Any) -> None:
        self.deferred.update(fields)

    def insert(self, entry: StepLog) -> bool:
        """Insert a log row (an attempt, before it is sent) while the claim holds and no
        cancel was asked for; False, with `cancel_requested` set, when one was."""
        with write_lock():
            inserted = insert_log_while_claimed(
                entry, order_pk=self.order_pk, claim_token=self.claim_token
            )
        if inserted:
            return True
        if not Order.objects.filter(pk=self.order_pk, claim_token=self.claim_token).exists():
            raise LostClaim
        self.cancel_requested = True
        return False

    def write(
        self, *, release: bool = False, then_insert: StepLog | None = None, **fields: Any
    ) -> str | None:
        """Write the order and the queued log rows, and insert `then_insert` unless a
        cancel was asked for; returns the status written, if any.

        The write also tells whether a cancel was asked for, which the loop checks before
        the next step: it is made on the condition that none was (on PostgreSQL as one
        statement, `write_order`), and only when it finds one is it made again without it.
        An order that would now wait (for a retry or a callback) is cancelled instead,
        since its current step has ended.
        """
        fields = {**self.deferred, **fields}
        self.deferred = {}
        if self.notify and "status" in fields:
            with write_transaction():
                status = self._write(fields, release=release, then_insert=then_insert)
                insert_events([self.order_pk], now=timezone.now(), previous=Order.Status.RUNNING)
            return status
        return self._write(fields, release=release, then_insert=then_insert)

    def _write(
        self, fields: dict[str, Any], *, release: bool, then_insert: StepLog | None
    ) -> str | None:
        now = timezone.now()
        fields["updated_at"] = now
        if release:
            fields.update(claim_token=None, lease_expires_at=None)
        held = {"pk": self.order_pk, "claim_token": self.claim_token}
        with self._lock:
            pending, self._pending_logs = self._pending_logs, []
        if not self.close_callbacks and write_order(
            where={**held, "cancel_requested": False},
            values=fields,
            logs=pending,
            then_insert=then_insert,
        ):
            return fields.get("status")
        with write_transaction():
            if self.close_callbacks:
                callbacks_close([self.order_pk])
                self.close_callbacks = False
            if not update_rows(Order, where={**held, "cancel_requested": False}, values=fields):
                if fields.get("status") == Order.Status.WAITING:
                    fields.update(
                        status=Order.Status.CANCELLED,
                        due_at=None,
                        finished_at=now,
                        error="cancelled while running",
                    )
                    callbacks_close([self.order_pk])
                if not update_rows(Order, where=held, values=fields):
                    raise LostClaim
                self.cancel_requested = True
            for entry in pending:
                write_log(entry)
            if then_insert is not None and not self.cancel_requested:
                insert_row(then_insert)
        return fields.get("status")

    def write_retry(self, entry: StepLog, *, counts_attempt: bool) -> None:
        """A failed attempt that will be retried is written at once, with the attempt count.

        The write also looks for a cancel asked for during the step, as every write of the
        turn does: it sets `cancel_requested`, and the retry is not sent."""
        values: dict[str, Any] = {"updated_at": timezone.now()}
        if counts_attempt:
            values["attempt"] = entry.attempt
        held = {"pk": self.order_pk, "claim_token": self.claim_token}
        with write_transaction():
            if not update_rows(Order, where={**held, "cancel_requested": False}, values=values):
                if not update_rows(Order, where=held, values=values):
                    raise LostClaim
                self.cancel_requested = True
            write_log(entry)


def release_after_error(
    *, order_pk: int, claim_token: uuid.UUID, exc: Exception, secret_values: Iterable[str]
) -> None:
    """An unexpected error is logged at the order's step and the order tried again in a
    minute; after MAX_INTERNAL_ERRORS at one step of one run it fails, so a bug cannot keep
    an order (and its calls) going round for ever."""
    now = timezone.now()
    message = f"{INTERNAL_ERROR}: " + mask(f"{type(exc).__name__}: {exc}", secret_values)[:2000]
    held = Order.objects.filter(pk=order_pk, claim_token=claim_token)
    with transaction.atomic():
        order = held.values("run", "current_step", "data").first()
        if order is None:
            return
        place = {"order_pk": order_pk, "run": order["run"], "step": order["current_step"]}
        log_entry(
            **place, kind=StepLog.Kind.STEP, outcome=StepLog.Outcome.FAILED, error=message
        ).save()
        errors = StepLog.objects.filter(
            order_id=order_pk,
            run=order["run"],
            step=order["current_step"],
            kind=StepLog.Kind.STEP,
            error__startswith=f"{INTERNAL_ERROR}:",
        ).count()
        if errors >= MAX_INTERNAL_ERRORS:
            fields = {
                "status": Order.Status.FAILED,
                "failed_step": order["current_step"],
                "failed_reason": message,
                "due_at": None,
                "finished_at": now,
                "resume_point": {"step": order["current_step"], "data": order["data"]},
            }
            message += f" ({errors} internal errors at this step: reprocess once it is fixed)"
        else:
            # 45 to 75 seconds: orders a bug hit together are not tried again together.
            wait = timedelta(seconds=random.uniform(45, 75))
            fields = {"status": Order.Status.WAITING, "due_at": now + wait}
            message += "; tried again in about a minute"
        released = held.update(
            **fields, claim_token=None, lease_expires_at=None, error=message, updated_at=now
        )
        if released:
            insert_events([order_pk], now=now, previous=Order.Status.RUNNING)


# Callbacks.


def callbacks_close(order_pks: list[int]) -> None:
    """Expire the open callbacks of these orders: the steps waiting for them are over
    (failed, cancelled, or a new run begun), so a late post to an old token gets 409; and
    close their message waits, so a message that comes later is kept for others."""
    if order_pks:
        Callback.objects.filter(order_id__in=order_pks, status=Callback.Status.WAITING).update(
            status=Callback.Status.EXPIRED
        )
        MessageWait.objects.filter(
            order_id__in=order_pks, status=MessageWait.Status.WAITING
        ).update(status=MessageWait.Status.CLOSED)


def wake_for_callback(
    callback: Callback,
    *,
    outcome: str,
    response: dict,
    now: datetime,
    actor: str = "",
    reason: str = "",
) -> None:
    """A callback came: its order, if it waits, is due at once; the callback is logged,
    with who resolved it and why when a person did, by hand."""
    with transaction.atomic():
        _wake(callback.order_id, now=now)
        log_entry(
            order_pk=callback.order_id,
            run=callback.run,
            step=callback.step,
            kind=StepLog.Kind.CALLBACK,
            outcome=StepLog.Outcome.SUCCEEDED if outcome == "success" else StepLog.Outcome.FAILED,
            request={"reason": reason} if reason else None,
            response=response,
            actor=actor,
        ).save()


def _wake(order_pk: int, *, now: datetime) -> None:
    waiting = (Order.Status.WAITING,)
    insert_events([order_pk], now=now, status=Order.Status.PENDING, where_status=waiting)
    woken = Order.objects.filter(pk=order_pk, status=Order.Status.WAITING).update(
        status=Order.Status.PENDING, due_at=now, updated_at=now
    )
    if woken:
        doorbell.ring(doorbell.ORDERS)


# Reprocess and cancel, set-based. The callers lock the orders first, in the same
# transaction (`lock_orders`), and decide which of them change and how; these write.


def lock_orders(orders: QuerySet) -> QuerySet:
    """`orders` locked until the transaction ends, skipping rows another transaction holds
    (a worker claiming them this instant): those are left as they are. SQLite's IMMEDIATE
    transactions serialise writers, so there nothing needs locking."""
    if connections[orders.db].features.has_select_for_update_skip_locked:
        orders = orders.select_for_update(skip_locked=True, of=("self",))
    return orders.order_by("pk")


def begin_new_runs(
    pks: list[int],
    *,
    snapshots: dict[str, int] | None,
    first_steps: dict[int, str] | None,
    actor: str,
    request: dict,
    now: datetime,
    start_at: dict[int, tuple[str, dict]] | None = None,
) -> None:
    """Begin a new run of each locked order of `pks`: pending and due at once, its attempt,
    step count, step state, error and failed step cleared, its earlier runs' callbacks
    expired, and a `reprocess` entry with who asked logged at the step it starts from.

    `snapshots` maps each workflow to the snapshot its new run uses (None: each order's
    pinned one). `first_steps` maps those snapshots to their first step, where the new run
    starts with empty data; None resumes each order at its failed step (its resume point,
    else its current step) with the data saved before it. `start_at` maps each order to
    the step and data its new run starts with instead (a reprocess from a named step).
    """
    if not pks:
        return
    fields = {
        "run": F("run") + 1,
        "attempt": 0,
        "steps_in_run": 0,
        "step_state": {},
        "resume_point": {},
        "error": "",
        "failed_step": "",
        "failed_http_status": None,
        "failed_reason": "",
        "status": Order.Status.PENDING,
        "due_at": now,
        "finished_at": None,
        "cancel_requested": False,
        "claim_token": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    if snapshots is not None:
        fields["snapshot_id"] = _by_workflow(snapshots)
    if start_at is not None:
        fields["current_step"] = Case(
            *(When(pk=pk, then=Value(step)) for pk, (step, _data) in start_at.items()),
            default=F("current_step"),
        )
        fields["data"] = Case(
            *(When(pk=pk, then=Value(data, JSONField())) for pk, (_step, data) in start_at.items()),
            default=F("data"),
            output_field=JSONField(),
        )
    elif first_steps is None:
        fields["current_step"] = Coalesce(
            NullIf(KT("resume_point__step"), Value("")), "current_step"
        )
        fields["data"] = Case(
            When(resume_point__has_key="data", then=KeyTransform("data", "resume_point")),
            default=F("data"),
            output_field=JSONField(),
        )
        fields["step_state"] = Case(  # a map's items that succeeded keep their results
            When(
                resume_point__has_key="step_state", then=KeyTransform("step_state", "resume_point")
            ),
            default=Value({}, JSONField()),
            output_field=JSONField(),
        )
    else:
        if snapshots is None:
            whens = [When(snapshot_id=pk, then=Value(step)) for pk, step in first_steps.items()]
            fields["current_step"] = Case(*whens, default=F("current_step"))
        else:
            fields["current_step"] = _by_workflow(
                {workflow: first_steps[pk] for workflow, pk in snapshots.items()}
            )
        fields["data"] = Value({}, JSONField())
    events = insert_events(pks, now=now, status=Order.Status.PENDING)
    Order.objects.filter(pk__in=pks).update(**fields)
    if events:  # the step each new run starts from, known once it is written
        step = Order.objects.filter(pk=OuterRef("order_id")).values("current_step")
        OrderEvent.objects.filter(event_id__in=events).update(step=Subquery(step), error="")
    insert_requested_logs(
        pks, kind=StepLog.Kind.REPROCESS, actor=actor, now=now, request=request, with_data=True
    )
    callbacks_close(pks)
    doorbell.ring(doorbell.ORDERS)


def cancel_locked(rows: list[tuple[int, str]], *, actor: str, now: datetime) -> None:
    """Cancel locked, unfinished orders given as (pk, status): at once when they are not
    running, by asking the worker to stop when they are; each cancel is logged."""
    running = [pk for pk, status in rows if status == Order.Status.RUNNING]
    stopped = [pk for pk, status in rows if status != Order.Status.RUNNING]
    if stopped:
        insert_events(stopped, now=now, status=Order.Status.CANCELLED)
        Order.objects.filter(pk__in=stopped).update(
            status=Order.Status.CANCELLED,
            due_at=None,
            finished_at=now,
            claim_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    if running:
        Order.objects.filter(pk__in=running).update(cancel_requested=True, updated_at=now)
    insert_requested_logs([pk for pk, _ in rows], kind=StepLog.Kind.CANCEL, actor=actor, now=now)
    callbacks_close(stopped)


def _by_workflow(values: dict[str, object]) -> Case:
    return Case(*[When(workflow=workflow, then=Value(value)) for workflow, value in values.items()])
