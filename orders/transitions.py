"""Every change of an order's state, in one place: its status, its current step, its claim
and the log rows that record each change.

The runner writes through `HeldOrder` (each write conditional on the claim token of its
turn), the batch claims with `mark_claimed` and releases with `release_after_error`, the
services start new runs and cancel, and a callback wakes a waiting order. Nothing else
writes `Order.status`, so a rule about transitions (a notification, an audit) has one
home.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from expressions.secrets import mask
from orders.engine.rows import insert_row, update_rows, write_log, write_order, write_transaction
from orders.models import Callback, Order, StepLog

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
    the transaction holds SQLite's write lock from its start.
    """
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


class HeldOrder:
    """The writes of one turn on an order it claimed, each made only while the claim holds.

    Log rows are queued and written with the next write of the order. Everything written
    here passes the secrets mask: the order's step state and error, and the log rows.
    """

    def __init__(self, order_pk: int, claim_token: uuid.UUID, secret_values: list[str]):
        self.order_pk = order_pk
        self.claim_token = claim_token
        self.secret_values = secret_values
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
        now = timezone.now()
        fields["updated_at"] = now
        if release:
            fields.update(claim_token=None, lease_expires_at=None)
        for name in ("step_state", "error"):
            if name in fields:
                fields[name] = mask(fields[name], self.secret_values)
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
        """A failed attempt that will be retried is written at once, with the attempt count."""
        with write_transaction():
            if counts_attempt:
                updated = update_rows(
                    Order,
                    where={"pk": self.order_pk, "claim_token": self.claim_token},
                    values={"attempt": entry.attempt, "updated_at": timezone.now()},
                )
                if not updated:
                    raise LostClaim
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
                "due_at": None,
                "finished_at": now,
                "resume_point": {"step": order["current_step"], "data": order["data"]},
            }
            message += f" ({errors} internal errors at this step: reprocess once it is fixed)"
        else:
            fields = {"status": Order.Status.WAITING, "due_at": now + timedelta(seconds=60)}
            message += "; tried again in a minute"
        held.update(
            **fields, claim_token=None, lease_expires_at=None, error=message, updated_at=now
        )


# Callbacks.


def callbacks_close(order_pks: list[int]) -> None:
    """Expire the open callbacks of these orders: the steps waiting for them are over
    (failed, cancelled, or a new run begun), so a late post to an old token gets 409."""
    if order_pks:
        Callback.objects.filter(order_id__in=order_pks, status=Callback.Status.WAITING).update(
            status=Callback.Status.EXPIRED
        )


def wake_for_callback(callback: Callback, *, outcome: str, response: dict, now: datetime) -> None:
    """A callback came: its order, if it waits, is due at once; the callback is logged."""
    Order.objects.filter(pk=callback.order_id, status=Order.Status.WAITING).update(
        status=Order.Status.PENDING, due_at=now, updated_at=now
    )
    log_entry(
        order_pk=callback.order_id,
        run=callback.run,
        step=callback.step,
        kind=StepLog.Kind.CALLBACK,
        outcome=StepLog.Outcome.SUCCEEDED if outcome == "success" else StepLog.Outcome.FAILED,
        response=response,
    ).save()


# New runs (reprocess).

NEW_RUN_FIELDS = [
    "snapshot",
    "current_step",
    "data",
    "run",
    "attempt",
    "steps_in_run",
    "step_state",
    "resume_point",
    "error",
    "failed_step",
    "failed_http_status",
    "status",
    "due_at",
    "finished_at",
    "cancel_requested",
    "claim_token",
    "lease_expires_at",
    "updated_at",
]


def begin_new_run(
    order: Order,
    *,
    snapshot_id: int,
    step: str,
    data: dict,
    actor: str,
    request: dict,
    now: datetime,
) -> StepLog:
    """Set `order` (not saved) to a new run, pending and due at once, from `step` with
    `data`; returns its log row (not saved). `save_new_runs` writes both."""
    order.snapshot_id = snapshot_id
    order.current_step = step
    order.data = data
    order.run += 1
    order.attempt = 0
    order.steps_in_run = 0
    order.step_state = {}
    order.resume_point = {}
    order.error = ""
    order.failed_step = ""
    order.failed_http_status = None
    order.status = Order.Status.PENDING
    order.due_at = now
    order.finished_at = None
    order.cancel_requested = False
    order.claim_token = None
    order.lease_expires_at = None
    order.updated_at = now
    return log_entry(
        order_pk=order.pk,
        run=order.run,
        step=step,
        kind=StepLog.Kind.REPROCESS,
        outcome=StepLog.Outcome.REQUESTED,
        started_at=now,
        actor=actor,
        request=request,
    )


def save_new_runs(orders: list[Order], entries: list[StepLog]) -> None:
    """Write orders set by `begin_new_run` and their log rows, in the caller's transaction;
    the callbacks of their old runs expire."""
    Order.objects.bulk_update(orders, NEW_RUN_FIELDS)
    StepLog.objects.bulk_create(entries)
    callbacks_close([order.pk for order in orders])


# Cancel.

_CANCEL_FIELDS = [
    "status",
    "due_at",
    "finished_at",
    "claim_token",
    "lease_expires_at",
    "updated_at",
]


def cancel_orders(orders: list[Order], *, actor: str, now: datetime) -> None:
    """Cancel locked, unfinished orders, in the caller's transaction: at once when they are
    not running, by asking the worker to stop when they are; each cancel is logged."""
    running = [order for order in orders if order.status == Order.Status.RUNNING]
    stopped = [order for order in orders if order.status != Order.Status.RUNNING]
    for order in stopped:
        order.status = Order.Status.CANCELLED
        order.due_at = None
        order.finished_at = now
        order.claim_token = None
        order.lease_expires_at = None
        order.updated_at = now
    Order.objects.bulk_update(stopped, _CANCEL_FIELDS)
    for order in running:
        order.cancel_requested = True
        order.updated_at = now
    Order.objects.filter(pk__in=[order.pk for order in running]).update(
        cancel_requested=True, updated_at=now
    )
    StepLog.objects.bulk_create(
        log_entry(
            order_pk=order.pk,
            run=order.run,
            step=order.current_step,
            kind=StepLog.Kind.CANCEL,
            outcome=StepLog.Outcome.REQUESTED,
            started_at=now,
            actor=actor,
        )
        for order in orders
    )
    callbacks_close([order.pk for order in stopped])
