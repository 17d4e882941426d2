"""Advance one claimed order as far as it can go, persisting each outcome atomically.

Every write to the order is conditional on the claim token the batch gave this turn:
a worker that lost its lease (paused, partitioned) finds its writes refused and stops,
and can never overwrite the work of the worker that took the order over.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from apicalls.rendering import CallRequest, log_request
from blueprints.models import WorkflowSnapshot
from expressions.secrets import load_secrets, mask
from orders.callbacks import callbacks_close
from orders.engine import calls
from orders.engine.flow import (
    AwaitingCallback,
    Ended,
    Failed,
    OrderState,
    Outcome,
    RetryLater,
    StepError,
    Succeeded,
    run_step,
    step_kind,
)
from orders.engine.rows import (
    insert_row,
    read_order,
    update_rows,
    write_lock,
    write_log,
    write_order,
    write_transaction,
)
from orders.models import Callback, Order, StepLog

logger = logging.getLogger(__name__)

# What a turn reads of its order.
ORDER_FIELDS = [
    "cancel_requested",
    "snapshot_id",
    "order_id",
    "workflow",
    "created_at",
    "run",
    "payload",
    "data",
    "current_step",
    "attempt",
    "steps_in_run",
    "step_state",
    "resume_point",
]


class LostClaim(Exception):
    """The order's claim was taken over by another worker; this turn must stop writing."""


class CancelRequested(Exception):
    """A cancel was found when the step's attempt was to be recorded: it is not sent."""


@dataclass(frozen=True)
class Workflow:
    """A snapshot's definition, as the runner walks it."""

    steps: dict[str, dict]
    step_order: list[str]
    api_calls: dict[str, dict]

    @classmethod
    def load(cls, snapshot_pk: int) -> Workflow:
        definition = WorkflowSnapshot.objects.values_list("definition", flat=True).get(
            pk=snapshot_pk
        )
        steps = definition["blueprint"]["steps"]
        return cls(
            steps={step["id"]: step for step in steps},
            step_order=[step["id"] for step in steps],
            api_calls=definition["api_calls"],
        )


@dataclass(frozen=True)
class EngineConfig:
    """The settings the engine needs, read once at the edge."""

    max_steps_per_run: int
    outbound_allow: list[str]
    max_inline_wait_seconds: float
    public_url: str
    log_body_bytes: int
    token_key: bytes
    secrets: dict[str, str] = field(default_factory=dict)
    # Snapshots never change: each is read once by a batch (whose config this is), not
    # once per order. Its threads share the parsed definitions and never change them.
    workflows: dict[int, Workflow] = field(default_factory=dict, compare=False, repr=False)

    def workflow(self, snapshot_pk: int) -> Workflow:
        workflow = self.workflows.get(snapshot_pk)
        if workflow is None:
            workflow = self.workflows[snapshot_pk] = Workflow.load(snapshot_pk)
        return workflow

    @classmethod
    def from_settings(cls) -> EngineConfig:
        config = settings.STATE_MANAGER
        return cls(
            max_steps_per_run=config["MAX_STEPS_PER_RUN"],
            outbound_allow=list(config["OUTBOUND_ALLOW"]),
            max_inline_wait_seconds=float(config["MAX_INLINE_WAIT_SECONDS"]),
            public_url=config["PUBLIC_URL"],
            log_body_bytes=config["LOG_BODY_BYTES"],
            token_key=settings.SECRET_KEY.encode(),
            secrets=load_secrets(),
        )


def advance_order(order_pk: int, claim_token: uuid.UUID, config: EngineConfig | None = None) -> str:
    """Run the claimed order's steps until it ends, waits, or must wait for a retry.

    Returns the status the order was left in. Releases the claim unless it was lost.
    """
    config = config or EngineConfig.from_settings()
    turn = OrderTurn(order_pk, claim_token, config)
    try:
        return turn.run()
    except LostClaim:
        logger.warning("order %s: claim lost to another worker; stopping this turn", order_pk)
        return "lost"


class OrderTurn:
    """One turn of one order: the runner loop, and the `Turn` the flow functions call back."""

    def __init__(self, order_pk: int, claim_token: uuid.UUID, config: EngineConfig):
        self.order_pk = order_pk
        self.claim_token = claim_token
        self.config = config
        self.secrets = config.secrets
        self.secret_values = [value for value in config.secrets.values() if value]
        self.outbound_allow = config.outbound_allow
        self.max_inline_wait_seconds = config.max_inline_wait_seconds
        self.public_url = config.public_url
        self._pending_logs: list[StepLog] = []
        self._attempts: dict[int, StepLog] = {}  # in-flight attempt rows, by id
        self._lock = threading.Lock()
        self._cancel_requested = False
        self._close_callbacks = False
        # The order's update after a step that is followed by a call, written with that
        # call's attempt row (one commit per step, not two): see `advance`.
        self._deferred: dict[str, Any] = {}

    # The loop.

    def run(self) -> str:
        order = read_order(
            pk=self.order_pk,
            claim_token=self.claim_token,
            names=ORDER_FIELDS,
            interrupted={
                "outcome": StepLog.Outcome.INTERRUPTED,
                "error": "the worker stopped before this attempt finished; the step was run again",
            },
        )
        if order is None:
            raise LostClaim
        self._cancel_requested = order["cancel_requested"]
        self.state = order_state(self.order_pk, order)
        workflow = self.config.workflow(order["snapshot_id"])
        self.steps, self.step_order = workflow.steps, workflow.step_order
        self.api_calls = workflow.api_calls

        while True:
            if self._cancel_requested:
                return self.finish(Order.Status.CANCELLED, "cancelled while running")
            if self.state.steps_in_run >= self.config.max_steps_per_run:
                return self.finish(
                    Order.Status.FAILED,
                    f"the run executed more than {self.config.max_steps_per_run} steps "
                    f"(STATE_MANAGER_MAX_STEPS_PER_RUN); stopped before step "
                    f'"{self.state.current_step}"',
                )
            step = self.steps.get(self.state.current_step)
            if step is None:
                return self.finish(
                    Order.Status.FAILED, f'no step "{self.state.current_step}" in the blueprint'
                )
            try:
                outcome = run_step(step, self.state, self.api_calls, self)
            except CancelRequested:
                return self.finish(Order.Status.CANCELLED, "cancelled while running")
            status = self.apply(step, outcome)
            if status is not None:
                return status

    def apply(self, step: dict, outcome: Outcome) -> str | None:
        """Persist one outcome; returns the order's status when the turn ends, else None."""
        if isinstance(outcome, Succeeded):
            return self.advance(step, outcome)
        if isinstance(outcome, Failed):
            return self.fail_step(step, outcome.error)
        if isinstance(outcome, Ended):
            return self.finish(outcome.status, outcome.error)
        if isinstance(outcome, RetryLater):
            return self.commit(
                status=Order.Status.WAITING,
                due_at=timezone.now() + timedelta(seconds=outcome.delay),
                attempt=outcome.attempt,
                step_state=outcome.step_state,
                release=True,
            )
        if isinstance(outcome, AwaitingCallback):
            return self.await_callback(outcome)
        raise TypeError(f"unknown outcome {outcome!r}")

    def advance(self, step: dict, outcome: Succeeded) -> str | None:
        # A secret saved by mistake is stored masked, like everywhere else.
        saved = mask(outcome.saved, self.secret_values)
        self.state.data = {**self.state.data, **saved}
        self.state.steps_in_run += 1
        if step.get("end"):
            error = "" if step["end"] == "completed" else f'step "{step["id"]}" ended the order'
            return self.finish(step["end"], error)
        next_step = outcome.next_step or self.following_step(step["id"])
        if next_step is None:
            return self.finish(Order.Status.COMPLETED, "")
        self.state.current_step = next_step
        self.state.attempt = 0
        carried = (
            {"error": self.state.step_state["error"]} if "error" in self.state.step_state else {}
        )
        self.state.step_state = carried
        fields = {
            "data": self.state.data,
            "current_step": next_step,
            "attempt": 0,
            "steps_in_run": self.state.steps_in_run,
            "step_state": carried,
        }
        if step_kind(self.steps.get(next_step, {})) == "call":
            # Written with the next call's attempt row, before that call is sent (or with
            # whatever this turn writes first): one commit per step. A crash in between
            # loses only this step's outcome, and this step runs again: the one in
            # flight, as the contract allows.
            self._deferred.update(fields)
        else:
            self.commit(**fields)
        return None

    def fail_step(self, step: dict, error: StepError) -> str | None:
        message = mask(error.message, self.secret_values)
        # "Reprocess from the failed step" starts here again, with the data saved before it.
        self.state.resume_point = {"step": step["id"], "data": self.state.data}
        # A late post to the step's token must not wake the order.
        self._close_callbacks = bool(step.get("wait_for_callback"))
        target = step.get("on_failed")
        if target is None:
            return self.finish(Order.Status.FAILED, f'step "{error.step}": {message}')
        self.state.steps_in_run += 1
        self.state.current_step = target
        self.state.attempt = 0
        self.state.step_state = {
            "error": {"step": error.step, "message": message, "status": error.status}
        }
        self.commit(
            current_step=target,
            attempt=0,
            steps_in_run=self.state.steps_in_run,
            step_state=self.state.step_state,
            resume_point=self.state.resume_point,
            error=f'step "{error.step}": {message}',
        )
        return None

    def await_callback(self, outcome: AwaitingCallback) -> str | None:
        """Wait for the callback, unless it already came while the call was in flight.

        The timeout counts from the moment the wait starts, after the call succeeded
        (retries and crash re-runs of the call included), not from the first attempt.
        """
        with write_transaction():
            callback = Callback.objects.select_for_update().get(token=outcome.token)
            self.state.step_state = outcome.step_state
            if callback.status != Callback.Status.WAITING:
                self.commit(step_state=outcome.step_state)
                return None
            if outcome.starts_wait:
                callback.expires_at = timezone.now() + timedelta(seconds=outcome.timeout_seconds)
                callback.save(update_fields=["expires_at"])
            return self.commit(
                status=Order.Status.WAITING,
                due_at=callback.expires_at,
                step_state=outcome.step_state,
                release=True,
            )

    def finish(self, status: str, error: str) -> str:
        self.commit(
            status=status,
            data=self.state.data,
            resume_point=self.state.resume_point,
            steps_in_run=self.state.steps_in_run,
            error=mask(error, self.secret_values),
            due_at=None,
            finished_at=timezone.now(),
            release=True,
        )
        return status

    def following_step(self, step_id: str) -> str | None:
        index = self.step_order.index(step_id)
        return self.step_order[index + 1] if index + 1 < len(self.step_order) else None

    # Persistence.

    def commit(
        self, *, release: bool = False, then_insert: StepLog | None = None, **fields: Any
    ) -> str | None:
        """Write the order (only while this turn holds its claim) and the pending log rows,
        and insert `then_insert` unless a cancel was asked for; returns the status written,
        if any.

        The write also tells whether a cancel was asked for, which the loop checks before
        the next step: it is made on the condition that none was (on PostgreSQL as one
        statement, `write_order`), and only when it finds one is it made again without it.
        An order that would now wait (for a retry or a callback) is cancelled instead,
        since its current step has ended.
        """
        fields = {**self._deferred, **fields}
        self._deferred = {}
        now = timezone.now()
        fields["updated_at"] = now
        if release:
            fields.update(claim_token=None, lease_expires_at=None)
        if "step_state" in fields:
            fields["step_state"] = mask(fields["step_state"], self.secret_values)
        held = {"pk": self.order_pk, "claim_token": self.claim_token}
        with self._lock:
            pending, self._pending_logs = self._pending_logs, []
        if not self._close_callbacks and write_order(
            where={**held, "cancel_requested": False},
            values=fields,
            logs=pending,
            then_insert=then_insert,
        ):
            return fields.get("status")
        with write_transaction():
            if self._close_callbacks:
                callbacks_close([self.order_pk])
                self._close_callbacks = False
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
                self._cancel_requested = True
            for entry in pending:
                write_log(entry)
            if then_insert is not None and not self._cancel_requested:
                insert_row(then_insert)
        return fields.get("status")

    def step_note(self, *, step: str, note: str, failed: bool = False) -> None:
        """Log a step that sends nothing (choice, end) or a callback's result."""
        outcome = StepLog.Outcome.FAILED if failed else StepLog.Outcome.SUCCEEDED
        self.queue_log(
            StepLog(
                order_id=self.order_pk,
                run=self.state.run,
                step=step,
                kind=StepLog.Kind.STEP,
                outcome=outcome,
                duration_ms=0,
                error=mask(note, self.secret_values) if failed else "",
                response={"note": mask(note, self.secret_values)},
            )
        )

    def queue_log(self, entry: StepLog) -> None:
        with self._lock:
            self._pending_logs.append(entry)

    # The `Turn` the flow functions call.

    def attempt_started(self, *, step: str, attempt: int, request: CallRequest) -> int:
        """Record the attempt before it is sent, so a crash leaves it visible as interrupted."""
        entry = StepLog(
            order_id=self.order_pk,
            run=self.state.run,
            step=step,
            attempt=attempt,
            kind=StepLog.Kind.ATTEMPT,
            outcome=StepLog.Outcome.IN_FLIGHT,
            request=log_request(
                request,
                secret_values=self.secret_values,
                max_body_bytes=self.config.log_body_bytes,
            ),
        )
        if self._deferred:
            self.commit(then_insert=entry)
            if entry.pk is None:
                raise CancelRequested
        else:
            with write_lock():
                insert_row(entry)
        with self._lock:
            self._attempts[entry.pk] = entry
        return entry.pk

    def attempt_finished(
        self,
        log_id: int,
        *,
        result: calls.CallResult | None,
        outcome: str,
        error: str = "",
    ) -> None:
        with self._lock:
            entry = self._attempts.pop(log_id, None)
        if entry is None:
            entry = StepLog.objects.get(pk=log_id)
        entry.outcome = outcome
        entry.error = mask(error, self.secret_values)
        if result is not None:
            entry.duration_ms = result.duration_ms
            entry.response = calls.log_response(
                result, secret_values=self.secret_values, max_body_bytes=self.config.log_body_bytes
            )
        if outcome == StepLog.Outcome.RETRYING:
            self.record_retry(entry)
        else:
            self.queue_log(entry)

    def record_retry(self, entry: StepLog) -> None:
        """A failed attempt that will be retried is written at once, with the attempt count."""
        with write_transaction():
            if entry.step == self.state.current_step:
                updated = update_rows(
                    Order,
                    where={"pk": self.order_pk, "claim_token": self.claim_token},
                    values={"attempt": entry.attempt, "updated_at": timezone.now()},
                )
                if not updated:
                    raise LostClaim
            write_log(entry)

    def attempt_refused(self, *, step: str, attempt: int, error: str) -> None:
        self.queue_log(
            StepLog(
                order_id=self.order_pk,
                run=self.state.run,
                step=step,
                attempt=attempt,
                kind=StepLog.Kind.ATTEMPT,
                outcome=StepLog.Outcome.FAILED,
                duration_ms=0,
                error=mask(error, self.secret_values),
            )
        )

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def thread_done(self) -> None:
        connections.close_all()

    def callback_token(self, *, step: str) -> str:
        """Derived, not random, so a crash re-run of the step sends the same callback URL."""
        name = f"{self.order_pk}:{self.state.run}:{self.state.steps_in_run}:{step}"
        return hmac.new(self.config.token_key, name.encode(), hashlib.sha256).hexdigest()[:40]

    def open_callback(self, *, token: str, step: str, timeout_seconds: float) -> None:
        """Created before the call is sent, so a callback that comes back at once finds it."""
        Callback.objects.get_or_create(
            token=token,
            defaults={
                "order_id": self.order_pk,
                "run": self.state.run,
                "step": step,
                "expires_at": timezone.now() + timedelta(seconds=timeout_seconds),
            },
        )

    def callback_status(self, token: str) -> tuple[str, Any]:
        callback = Callback.objects.get(token=token)
        if callback.status == Callback.Status.WAITING and callback.expires_at <= timezone.now():
            Callback.objects.filter(pk=callback.pk, status=Callback.Status.WAITING).update(
                status=Callback.Status.EXPIRED
            )
            callback.refresh_from_db()
        return callback.status, callback.data


def order_state(order_pk: int, order: dict[str, Any]) -> OrderState:
    return OrderState(
        order_id=order["order_id"],
        workflow=order["workflow"],
        created_at=order["created_at"].isoformat(),
        run=order["run"],
        input=order["payload"],
        data=dict(order["data"]),
        current_step=order["current_step"],
        attempt=order["attempt"],
        steps_in_run=order["steps_in_run"],
        step_state=dict(order["step_state"]),
        resume_point=dict(order["resume_point"]),
        internal_id=order_pk,
    )
