"""The journal of a turn: what the flow functions ask of the runner (the `Turn` of
`flow.py`), recorded through the claim-holding writer of `transitions`.

It is the masking boundary: every request, response, error and note is masked before it
is queued or written. Attempts are recorded before they are sent, so a crash leaves them
visible as interrupted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.db import connections
from django.utils import timezone

from apicalls.rendering import CallRequest, log_request, truncated
from core import logcontext, tracing
from expressions.secrets import mask
from hosts import gate
from hosts.names import host_of
from orders import counters
from orders.engine import auth, calls
from orders.engine.config import EngineConfig
from orders.engine.flow import OrderState
from orders.engine.maps import map_step_of
from orders.engine.outcomes import masked_state
from orders.models import Callback, MessageWait, StepLog
from orders.transitions import ClaimedOrder, log_entry

logger = logging.getLogger(__name__)


class CancelRequested(Exception):
    """A cancel was found when the step's attempt was to be recorded: it is not sent."""


class Journal:
    """The `Turn` the flow functions call, for one claimed order."""

    def __init__(self, claimed: ClaimedOrder, state: OrderState, config: EngineConfig):
        self.claimed = claimed
        self.state = state
        self.config = config
        self._attempts: dict[int, StepLog] = {}  # in-flight attempt rows, by id
        self._lock = threading.Lock()
        self._signatures: list[str] = []  # made for this order's requests by connections
        self.turn_span = None  # the turn's span, the parent of its attempts' (while tracing)
        self._spans: dict[int, Any] = {}  # in-flight attempts' spans, by id
        self._sending = threading.local()  # the attempt span of this thread's next send

    @property
    def secret_values(self) -> list[str]:
        """What this order's writes mask: the engine's secrets and its requests' signatures."""
        return [*self.config.secret_values, *self._signatures]

    def _masked(self, value: Any) -> Any:
        return mask(value, self.secret_values)

    def _entry(self, *, step: str, kind: str, outcome: str, **fields: Any) -> StepLog:
        return log_entry(
            order_pk=self.claimed.order_pk,
            run=self.state.run,
            step=step,
            kind=kind,
            outcome=outcome,
            **fields,
        )

    def step_note(self, *, step: str, note: str, failed: bool = False) -> None:
        """Log a step that sends nothing (choice, end) or a callback's result."""
        self.claimed.queue_log(
            self._entry(
                step=step,
                kind=StepLog.Kind.STEP,
                outcome=StepLog.Outcome.FAILED if failed else StepLog.Outcome.SUCCEEDED,
                duration_ms=0,
                error=self._masked(note) if failed else "",
                response={"note": self._masked(note)},
            )
        )

    def step_saved(self, *, step: str, saved: dict) -> None:
        """Log what a step that succeeded saved (masked already), so the order page can show
        the data before and after each step; written with the step's outcome. A value longer
        than a logged body is cut like one, and its key listed under "truncated"."""
        if not saved:
            return
        logged = {key: truncated(value, self.config.log_body_bytes) for key, value in saved.items()}
        response: dict[str, Any] = {"saved": logged}
        cut = [key for key, value in saved.items() if logged[key] is not value]
        if cut:
            response["truncated"] = cut
        self.claimed.queue_log(
            self._entry(
                step=step,
                kind=StepLog.Kind.STEP,
                outcome=StepLog.Outcome.SUCCEEDED,
                duration_ms=0,
                response=response,
                saved=saved,
            )
        )

    def attempt_started(self, *, step: str, attempt: int, request: CallRequest) -> int:
        """Record the attempt before it is sent, with the previous step's outcome when it
        waits to be written (one commit per step); either way only while the claim holds, so
        a worker resumed after its lease ran out sends nothing (`LostClaim`)."""
        entry = self._entry(
            step=step,
            attempt=attempt,
            kind=StepLog.Kind.ATTEMPT,
            outcome=StepLog.Outcome.IN_FLIGHT,
            request=log_request(
                request,
                secret_values=self.config.secret_values,
                max_body_bytes=self.config.log_body_bytes,
            ),
        )
        # A parallel branch's thread starts with no log fields: all three, every time.
        logcontext.bind(order_id=self.state.order_id, step=step, attempt=attempt)
        if self.claimed.deferred:
            self.claimed.write(then_insert=entry)
            if entry.pk is None:
                raise CancelRequested
        elif not self.claimed.insert(entry):
            raise CancelRequested
        span = tracing.start_span(
            "attempt",
            parent=self.turn_span,
            kind=tracing.CLIENT,
            attributes={
                "order.id": self.state.order_id,
                "order.workflow": self.state.workflow,
                "order.step": step,
                "order.attempt": attempt,
                "server.address": host_of(request.url),
                "http.request.method": request.method,
            },
        )
        self._sending.span = span
        with self._lock:
            self._attempts[entry.pk] = entry
            if span is not None:
                self._spans[entry.pk] = span
        return entry.pk

    def enter_host(self, request: CallRequest) -> gate.Permit | gate.Hold:
        host = host_of(request.url)
        before = self.state.step_state.get("held") or {}
        held_before = before.get("count", 0) if before.get("host") == host else 0
        return gate.enter(host, timeout=request.timeout, held_before=held_before, sleep=self.sleep)

    def leave_host(self, permit: gate.Permit, result: calls.CallResult | None) -> None:
        if result is None:
            gate.leave(permit, sent=False)
        else:
            if not result.refused:  # sent: its time counts
                counters.observe(
                    "call_duration_seconds", result.duration_ms / 1000, host=permit.host
                )
            gate.leave(permit, sent=True, status=result.status, refused=result.refused)

    def held_back(self, *, step: str, reason: str, delay: float) -> None:
        """Log why the order waits for its host (once for each spell of waiting)."""
        self.claimed.queue_log(
            self._entry(
                step=step,
                kind=StepLog.Kind.STEP,
                outcome=StepLog.Outcome.WAITING,
                duration_ms=0,
                response={"note": self._masked(f"waits: {reason}; looks again in {delay:.0f}s")},
            )
        )

    def send(self, request: CallRequest, permit: gate.Permit) -> calls.CallResult:
        gate.wait_for_slot(permit, self.sleep)
        span = getattr(self._sending, "span", None)
        if span is None:
            return self._send(request)
        with tracing.current(span):  # the request's traceparent is the attempt's
            return self._send(request)

    def _send(self, request: CallRequest) -> calls.CallResult:
        if not request.connection:
            return calls.send(request, allow=self.config.outbound_allow)
        result = auth.send(request, allow=self.config.outbound_allow, secrets=self.config.secrets)
        with self._lock:
            self._signatures += result.masked
        return result

    def attempt_finished(
        self,
        log_id: int,
        *,
        result: calls.CallResult | None,
        outcome: str,
        error: str = "",
    ) -> None:
        with self._lock:
            entry = self._attempts.pop(log_id)
            span = self._spans.pop(log_id, None)
        tracing.end(
            span,
            error if outcome == StepLog.Outcome.FAILED else "",
            order__outcome=outcome,
            http__response__status_code=result.status if result is not None else None,
        )
        entry.outcome = outcome
        entry.error = self._masked(error)
        step = map_step_of(entry.step)  # one series per map step, not per item
        counters.add("attempts", blueprint=self.state.workflow, step=step, outcome=outcome)
        if logger.isEnabledFor(logging.DEBUG):
            url = (entry.request or {}).get("url", "")
            logger.debug("attempt %s: %s (%s)", outcome, url, entry.error or "no error")
        if result is not None:
            entry.duration_ms = result.duration_ms
            entry.response = calls.log_response(
                result,
                secret_values=self.secret_values,
                max_body_bytes=self.config.log_body_bytes,
            )
        if outcome == StepLog.Outcome.RETRYING:
            self.claimed.write_retry(entry, counts_attempt=entry.step == self.state.current_step)
            if self.claimed.cancel_requested:
                raise CancelRequested
        else:
            self.claimed.queue_log(entry)

    def attempt_refused(self, *, step: str, attempt: int, error: str) -> None:
        self.claimed.queue_log(
            self._entry(
                step=step,
                attempt=attempt,
                kind=StepLog.Kind.ATTEMPT,
                outcome=StepLog.Outcome.FAILED,
                duration_ms=0,
                error=self._masked(error),
            )
        )

    def end_spans(self) -> None:
        """End the spans of attempts a cancel or a lost claim interrupted."""
        with self._lock:
            spans, self._spans = list(self._spans.values()), {}
        for span in spans:
            tracing.end(span, "interrupted")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def thread_done(self) -> None:
        connections.close_all()

    def keep_step_state(self, step_state: dict, *, at_once: bool = False) -> None:
        """A map's items as they finish: written with the next item's attempt row (one
        commit for both), or at once when no item follows."""
        masked = masked_state(step_state, self.secret_values)
        if at_once:
            self.claimed.write(step_state=masked)
        else:
            self.claimed.defer(step_state=masked)

    def callback_token(self, *, step: str) -> str:
        """Derived, not random, so a crash re-run of the step sends the same callback URL."""
        name = f"{self.claimed.order_pk}:{self.state.run}:{self.state.steps_in_run}:{step}"
        return hmac.new(self.config.token_key, name.encode(), hashlib.sha256).hexdigest()[:40]

    def open_callback(self, *, token: str, step: str, timeout_seconds: float) -> None:
        """Created before the call is sent, so a callback that comes back at once finds it.
        One opened by an earlier turn whose call was not sent (its host held the order)
        and still waiting counts its time afresh."""
        expires_at = timezone.now() + timedelta(seconds=timeout_seconds)
        _, created = Callback.objects.get_or_create(
            token=token,
            defaults={
                "order_id": self.claimed.order_pk,
                "run": self.state.run,
                "step": step,
                "expires_at": expires_at,
            },
        )
        if not created:
            Callback.objects.filter(token=token, status=Callback.Status.WAITING).update(
                expires_at=expires_at
            )

    def message_status(self, wait: int) -> tuple[str, Any]:
        """Timed out only by a conditional UPDATE: a message that came this instant wins."""
        waits = MessageWait.objects.filter(pk=wait)
        now = timezone.now()
        waits.filter(status=MessageWait.Status.WAITING, until__lte=now).update(
            status=MessageWait.Status.TIMED_OUT
        )
        status, data = waits.values_list("status", "data").get()
        return status, data

    def callback_status(self, token: str) -> tuple[str, Any]:
        callback = Callback.objects.get(token=token)
        if callback.status == Callback.Status.WAITING and callback.expires_at <= timezone.now():
            Callback.objects.filter(pk=callback.pk, status=Callback.Status.WAITING).update(
                status=Callback.Status.EXPIRED
            )
            callback.refresh_from_db()
        return callback.status, callback.data
