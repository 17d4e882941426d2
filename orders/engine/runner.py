"""Advance one claimed order as far as it can go, persisting each outcome atomically.

Every write to the order is conditional on the claim token the batch gave this turn
(`transitions.ClaimedOrder`): a worker that lost its lease (paused, partitioned) finds its
writes refused and stops, and can never overwrite the work of the worker that took the
order over.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from core import logcontext, tracing
from definitions.graph import step_kind
from orders import counters
from orders.correlation import start_wait, wait_locked
from orders.engine.config import EngineConfig
from orders.engine.flow import OrderState, run_step
from orders.engine.journal import CancelRequested, Journal
from orders.engine.outcomes import (
    AwaitingCallback,
    AwaitingMessage,
    Ended,
    Failed,
    HeldBack,
    Outcome,
    RetryLater,
    StepError,
    Succeeded,
    masked_outcome,
)
from orders.engine.paths import Finish, move_to, refusal_before_step, what_follows
from orders.models import Callback, MessageWait, Order, StepLog
from orders.rows import read_order, write_transaction
from orders.transitions import ENDED_AS, ClaimedOrder, LostClaim

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
    "trace_parent",
]

# Each outcome's name in the metrics (`statemanager_steps_total{outcome=...}`).
OUTCOME_NAMES = {
    Succeeded: "succeeded",
    Failed: "failed",
    Ended: "ended",
    RetryLater: "retry_later",
    HeldBack: "held",
    AwaitingCallback: "awaiting_callback",
    AwaitingMessage: "awaiting_message",
}


def advance_order(order_pk: int, claim_token: uuid.UUID, config: EngineConfig | None = None) -> str:
    """Run the claimed order's steps until it ends, waits, or must wait for a retry.

    Returns the status the order was left in. Releases the claim unless it was lost.
    """
    config = config or EngineConfig.from_settings()
    turn = OrderTurn(order_pk, claim_token, config)
    status, error = "error", "internal error"
    with logcontext.bound():  # the order, step and attempt of this turn's log lines
        try:
            status = turn.run()
            error = ""
        except LostClaim:
            logger.warning("order %s: claim lost to another worker; stopping this turn", order_pk)
            status, error = "lost", "claim lost"
        finally:
            turn.journal_spans_end()
            tracing.end(turn.span, error, order__status=status)
    return status


class OrderTurn:
    """One turn of one order: read it, then run step after step, each outcome persisted
    through the claim-holding `ClaimedOrder`, until the order ends or waits."""

    def __init__(self, order_pk: int, claim_token: uuid.UUID, config: EngineConfig):
        self.order_pk = order_pk
        self.config = config
        self.claim_token = claim_token
        self.span = None
        self.journal = None

    def journal_spans_end(self) -> None:
        if self.journal is not None:
            self.journal.end_spans()

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
        logcontext.bind(order_id=order["order_id"])
        self.span = tracing.start_span(
            "order turn",
            traceparent=order["trace_parent"],
            attributes={
                "order.id": order["order_id"],
                "order.workflow": order["workflow"],
                "order.step": order["current_step"],
            },
        )
        workflow = self.config.workflow(order["snapshot_id"])
        self.claimed = ClaimedOrder(
            self.order_pk, self.claim_token, notify=bool(workflow.notify_url)
        )
        self.claimed.cancel_requested = order["cancel_requested"]
        self.state = order_state(self.order_pk, order)
        self.journal = journal = Journal(self.claimed, self.state, self.config)
        journal.turn_span = self.span
        self.steps, self.step_order = workflow.steps, workflow.step_order
        self.api_calls = workflow.api_calls

        while True:
            if self.claimed.cancel_requested:
                return self.finish(Order.Status.CANCELLED, "cancelled while running")
            refusal = refusal_before_step(self.state, self.steps, self.config.max_steps_per_run)
            if refusal is not None:
                return self.finish(ENDED_AS[refusal.status], refusal.error)
            step = self.steps[self.state.current_step]
            logcontext.bind(step=step["id"], attempt=None)
            try:
                outcome = run_step(step, self.state, self.api_calls, journal)
            except CancelRequested:
                return self.finish(Order.Status.CANCELLED, "cancelled while running")
            status = self.apply(step, outcome)
            if status is not None:
                return status

    def apply(self, step: dict, outcome: Outcome) -> str | None:
        """Persist one outcome; returns the order's status when the turn ends, else None."""
        outcome = masked_outcome(outcome, self.journal.secret_values)
        counters.add(
            "steps",
            blueprint=self.state.workflow,
            step=step["id"],
            outcome=OUTCOME_NAMES[type(outcome)],
        )
        if isinstance(outcome, Succeeded):
            return self.advance(step, outcome)
        if isinstance(outcome, Failed):
            return self.fail_step(step, outcome.error, kept=outcome.kept)
        if isinstance(outcome, Ended):
            return self.finish(ENDED_AS[outcome.status], outcome.error)
        if isinstance(outcome, RetryLater):
            return self.claimed.write(
                status=Order.Status.WAITING,
                due_at=timezone.now() + timedelta(seconds=outcome.delay),
                attempt=outcome.attempt,
                step_state=outcome.step_state,
                release=True,
            )
        if isinstance(outcome, HeldBack):
            return self.hold(outcome)
        if isinstance(outcome, AwaitingCallback):
            return self.await_callback(outcome)
        if isinstance(outcome, AwaitingMessage):
            return self.await_message(outcome)
        raise TypeError(f"unknown outcome {outcome!r}")

    def advance(self, step: dict, outcome: Succeeded) -> str | None:
        saved = outcome.saved  # a secret saved by mistake is masked, like everywhere else
        self.journal.step_saved(step=step["id"], saved=saved)
        self.state.data = {**self.state.data, **saved}
        self.state.steps_in_run += 1
        follows = what_follows(step, outcome, self.step_order)
        if isinstance(follows, Finish):
            return self.finish(ENDED_AS[follows.status], follows.error)
        next_step = follows.step
        move_to(self.state, next_step)
        fields = {
            "data": self.state.data,
            "current_step": next_step,
            "attempt": 0,
            "steps_in_run": self.state.steps_in_run,
            "step_state": self.state.step_state,
        }
        if step_kind(self.steps.get(next_step, {})) == "call":
            # Written with the next call's attempt row, before that call is sent (or with
            # whatever this turn writes first): one commit per step. A crash in between
            # loses only this step's outcome, and this step runs again: the one in
            # flight, as the contract allows.
            self.claimed.defer(**fields)
        else:
            self.claimed.write(**fields)
        return None

    def fail_step(self, step: dict, error: StepError, kept: dict | None = None) -> str | None:
        # "Reprocess from the failed step" starts here again, with the data saved before it
        # (and a map's items that succeeded, which it does not send again).
        self.state.resume_point = {"step": step["id"], "data": self.state.data}
        if kept:
            self.state.resume_point["step_state"] = kept
        # A late post to the step's token must not wake the order.
        self.claimed.close_callbacks = bool(step.get("wait_for_callback"))
        failure = {
            "failed_step": error.step,
            "failed_http_status": error.status,
            "failed_reason": error.message,
        }
        follows = what_follows(step, Failed(error), self.step_order)
        if isinstance(follows, Finish):
            return self.finish(ENDED_AS[follows.status], follows.error, **failure)
        target = follows.step
        self.state.steps_in_run += 1
        move_to(self.state, target, error=error)
        self.claimed.write(
            current_step=target,
            attempt=0,
            steps_in_run=self.state.steps_in_run,
            step_state=self.state.step_state,
            resume_point=self.state.resume_point,
            error=f'step "{error.step}": {error.message}',
            **failure,
        )
        return None

    def hold(self, outcome: HeldBack) -> str | None:
        """Leave the order waiting for its host, its step neither failed nor its attempt
        counted. The log says why once per spell: a hold for the same host and reason as
        the one before only counts it (the count stretches the wait)."""
        hold = outcome.hold
        counters.add("holds", host=hold.host, reason=hold.kind)
        before = self.state.step_state.get("held") or {}
        same = before.get("host") == hold.host and before.get("kind") == hold.kind
        if not same:
            self.journal.held_back(step=outcome.step_path, reason=hold.reason, delay=hold.delay)
        held = {
            "host": hold.host,
            "kind": hold.kind,
            "count": before.get("count", 0) + 1 if same else 1,
            "reason": hold.reason,
        }
        return self.claimed.write(
            status=Order.Status.WAITING,
            due_at=timezone.now() + timedelta(seconds=hold.delay),
            attempt=outcome.attempt,
            step_state={**outcome.step_state, "held": held},
            release=True,
        )

    def await_callback(self, outcome: AwaitingCallback) -> str | None:
        """Wait for the callback, unless it already came while the call was in flight.

        The timeout counts from the moment the wait starts, after the call succeeded
        (retries and crash re-runs of the call included), not from the first attempt.
        """
        with write_transaction():
            callback = Callback.objects.select_for_update().get(token=outcome.token)
            self.state.step_state = outcome.step_state
            if callback.status != Callback.Status.WAITING:
                self.claimed.write(step_state=outcome.step_state)
                return None
            if outcome.starts_wait:
                callback.expires_at = timezone.now() + timedelta(seconds=outcome.timeout_seconds)
                callback.save(update_fields=["expires_at"])
            return self.claimed.write(
                status=Order.Status.WAITING,
                due_at=callback.expires_at,
                step_state=outcome.step_state,
                release=True,
            )

    def await_message(self, outcome: AwaitingMessage) -> str | None:
        """Wait for the message, in one transaction with the wait under its correlation's
        lock (orders.correlation): a kept message is taken at once and the step goes on in
        this turn; else the order is `waiting` until the timeout, and a message that comes
        meanwhile finds the wait and wakes it."""
        with write_transaction():
            now = timezone.now()
            if outcome.wait is None:
                wait = start_wait(
                    order_pk=self.order_pk,
                    run=self.state.run,
                    step=self.state.current_step,
                    name=outcome.name,
                    key=outcome.key,
                    until=now + timedelta(seconds=outcome.timeout_seconds),
                    now=now,
                )
            else:
                wait = wait_locked(outcome.wait)
            waiting = {"wait": wait.pk, "name": wait.name, "key": wait.key}
            self.state.step_state = {**outcome.step_state, "message": waiting}
            if wait.status != MessageWait.Status.WAITING or wait.until <= now:
                self.claimed.write(step_state=self.state.step_state)
                return None
            return self.claimed.write(
                status=Order.Status.WAITING,
                due_at=wait.until,
                step_state=self.state.step_state,
                release=True,
            )

    def finish(self, status: str, error: str, **fields: Any) -> str:
        if "held" in self.state.step_state:  # the wait for a host is over
            fields["step_state"] = {k: v for k, v in self.state.step_state.items() if k != "held"}
        self.claimed.write(
            **fields,
            status=status,
            data=self.state.data,
            resume_point=self.state.resume_point,
            steps_in_run=self.state.steps_in_run,
            error=error,
            due_at=None,
            finished_at=timezone.now(),
            release=True,
        )
        return status


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
