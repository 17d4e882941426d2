"""A dry run: a blueprint walked for a sample payload and sample responses, step by step
as the runner would walk an order, sending nothing and writing nothing.

The flow functions are driven by a `DryTurn`, whose `send` answers each request from the
samples (200 `{}` where none is given), and what follows each outcome is decided by the
runner's own rules (`paths`). Where a real order would wait, the dry run notes the wait
and goes on: a retry due later is tried again at once (a retried call gets the same
sample again, or the next one when the sample is a list), and a callback comes back as
its sample says (success with empty data unless told otherwise), and a message step
gets a sample message with empty data at once. A map's items are answered by the sample
of `<step id>[<index>]`, else by the map step's own. Requests, responses,
notes and saved data are masked as the step log masks them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from jsonschema.validators import validator_for

from apicalls.rendering import CallRequest, log_request
from blueprints.models import Blueprint
from blueprints.services import workflow_definition
from core.errors import ServiceErrors, join_place
from definitions.graph import step_kind
from expressions.secrets import mask
from hosts.gate import Permit
from hosts.names import host_of
from orders.engine import calls
from orders.engine.config import EngineConfig
from orders.engine.flow import OrderState, run_step
from orders.engine.outcomes import (
    AwaitingCallback,
    AwaitingMessage,
    Ended,
    Failed,
    RetryLater,
    Succeeded,
    masked_outcome,
)
from orders.engine.paths import Finish, move_to, refusal_before_step, what_follows
from orders.engine.retry import retry_after_seconds
from orders.intake import payload_errors

# A dry run answers within a web request: it gives up after this many attempts in all
# (a step may allow any number of retries, and a sample answers each the same way).
MAX_ATTEMPTS = 500
CALLBACK_OUTCOMES = {"success": "succeeded", "failure": "failed", "timeout": "expired"}
SAMPLE_KEYS = {"status", "body", "headers", "callback"}


class DryRunInvalid(ServiceErrors):
    """The sample payload or responses cannot be used; each error names its place."""


class TooManyAttempts(Exception):
    pass


@dataclass(frozen=True)
class Sample:
    """What a step's API call answers in a dry run, and how its callback comes back."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    callback: dict = field(default_factory=dict)

    def result(self) -> calls.CallResult:
        value = {k.lower(): v for k, v in self.headers.items()}.get("retry-after")
        retry_after = retry_after_seconds(self.status, None if value is None else str(value))
        return calls.CallResult(
            status=self.status, headers=dict(self.headers), body=self.body, retry_after=retry_after
        )


@dataclass
class Attempt:
    step: str  # the step's id, or "<parallel step>.<branch>"
    attempt: int
    request: dict | None  # as the step log shows it; None when it could not be rendered
    response: dict | None  # the sample that answered it
    outcome: str = "in_flight"
    error: str = ""
    wait_seconds: float | None = None  # before the next attempt
    waits: str = ""  # "in the turn" (slept) or "order waiting" (due later)


@dataclass
class Visit:
    step: str
    kind: str
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: str = ""  # succeeded, failed or ended
    error: str = ""
    retries: int = 0
    saved: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    next: str | None = None


@dataclass
class End:
    status: str  # completed or failed as the order would end; stopped when the dry run gave up
    step: str
    error: str
    data: dict


@dataclass
class DryRun:
    workflow: str
    steps: list[Visit]
    end: End

    def as_json(self) -> dict:
        return asdict(self)


def call_step_paths(steps: list) -> list[tuple[str, str]]:
    """(path, API call slug) of every step that sends a request: the keys of `responses`."""
    paths = []
    for step in steps:
        if "call" in step:
            paths.append((step["id"], step["call"]))
        if isinstance(step.get("map"), dict) and "call" in step["map"]:
            paths.append((step["id"], step["map"]["call"]))  # or "<id>[<index>]", one item
        for branch in step.get("parallel", []):
            paths.append((f"{step['id']}.{branch['id']}", branch["call"]))
    return paths


def dry_run(
    definition: Mapping,
    *,
    payload: Any,
    responses: Any,
    config: EngineConfig,
    created_at: str | None = None,
) -> DryRun:
    """Walk `definition` (`{"blueprint", "api_calls"}`, a snapshot's shape) for `payload`,
    answering calls from `responses` (`{step path: sample or [sample per attempt]}`).

    Raises DryRunInvalid when the payload fails the input schema or a sample is malformed.
    """
    blueprint = definition["blueprint"]
    schema = blueprint.get("input_schema")
    validator = None if schema is None else validator_for(schema)(schema)
    paths = [path for path, _ in call_step_paths(blueprint["steps"])]
    samples, sample_problems = parse_samples(responses, paths)
    errors = payload_errors(validator, payload) + sample_problems
    if errors:
        raise DryRunInvalid(errors)
    walk = DryWalk(blueprint, definition["api_calls"], samples, config)
    state = OrderState(
        order_id="dry-run",
        workflow=blueprint["slug"],
        created_at=created_at or datetime.now(UTC).isoformat(),
        run=1,
        input=payload,
        data={},
        current_step=blueprint["steps"][0]["id"],
    )
    return DryRun(workflow=blueprint["slug"], steps=walk.visits, end=walk.run(state))


def blueprint_dry_run(*, blueprint: Blueprint, payload: Any, responses: Any) -> DryRun:
    """A dry run of the blueprint and the API calls it uses as they are now (no snapshot
    is saved), with the engine's settings and secrets: the admin's and the API's."""
    return dry_run(
        workflow_definition(blueprint=blueprint),
        payload=payload,
        responses=responses,
        config=EngineConfig.from_settings(),
    )


def parse_samples(responses: Any, paths: list[str]) -> tuple[dict[str, list[Sample]], list[str]]:
    """The samples by step path, and the errors that make some unusable."""
    if not isinstance(responses, dict):
        return {}, ["responses: must be an object of step ids"]
    errors: list[str] = []
    samples: dict[str, list[Sample]] = {}
    for key, value in responses.items():
        place = join_place("responses", [key])
        if key not in paths and item_of(key) not in paths:
            known = ", ".join(paths) or "none"
            errors.append(f"{place}: no step sends a request by this id (call steps: {known})")
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            errors.append(f"{place}: must hold one sample at least")
        for index, sample in enumerate(values):
            at = join_place(place, [index]) if isinstance(value, list) else place
            found = sample_errors(sample, at)
            errors += found
            if not found:
                samples.setdefault(key, []).append(Sample(**sample))
    return samples, errors


def item_of(path: str) -> str | None:
    """The map step whose item `path` names (`reserve[2]` -> `reserve`), else None.

    >>> item_of("reserve[2]"), item_of("reserve")
    ('reserve', None)
    """
    head, bracket, tail = path.partition("[")
    return head if bracket and tail.endswith("]") and tail[:-1].isdigit() else None


def sample_errors(sample: Any, place: str) -> list[str]:
    if not isinstance(sample, dict):
        return [f"{place}: must be an object with status, body, headers or callback"]
    errors = [
        f"{join_place(place, [key])}: unknown key" for key in sample if key not in SAMPLE_KEYS
    ]
    status = sample.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        errors.append(f"{place}.status: must be an HTTP status from 100 to 599")
    headers = sample.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        errors.append(f"{place}.headers: must be an object of texts")
    callback = sample.get("callback", {})
    if not isinstance(callback, dict):
        return [*errors, f"{place}.callback: must be an object with outcome and data"]
    errors += [
        f"{place}.callback.{key}: unknown key" for key in callback if key not in ("outcome", "data")
    ]
    if callback.get("outcome", "success") not in CALLBACK_OUTCOMES:
        errors.append(f"{place}.callback.outcome: must be one of success, failure, timeout")
    if not isinstance(callback.get("data", {}), dict):
        errors.append(f"{place}.callback.data: must be an object")
    return errors


class DryWalk:
    """The runner's loop over one order, kept in memory: step, outcome, what follows."""

    def __init__(self, blueprint: Mapping, api_calls: Mapping, samples: dict, config: EngineConfig):
        self.steps = {step["id"]: step for step in blueprint["steps"]}
        self.step_order = [step["id"] for step in blueprint["steps"]]
        self.api_calls = api_calls
        self.config = config
        self.turn = DryTurn(config, samples)
        self.visits: list[Visit] = []

    def masked(self, value: Any) -> Any:
        return mask(value, self.config.secret_values)

    def run(self, state: OrderState) -> End:
        while True:
            refusal = refusal_before_step(state, self.steps, self.config.max_steps_per_run)
            if refusal is not None:
                return self.end(refusal, state, step=state.current_step)
            step = self.steps[state.current_step]
            visit = Visit(step=step["id"], kind=step_kind(step))
            self.visits.append(visit)
            self.turn.visit = visit
            try:
                outcome = self.settle(step, state, visit)
            except TooManyAttempts:
                message = f"the dry run stopped after {MAX_ATTEMPTS} attempts in all"
                return self.end(Finish("stopped", message), state, step=step["id"])
            branches = [f"{step['id']}.{branch['id']}" for branch in step.get("parallel", [])]
            if branches:  # they ran at the same time: shown branch by branch
                visit.attempts.sort(key=lambda attempt: branches.index(attempt.step))
            if "map" in step:  # and a map's items item by item
                visit.attempts.sort(key=lambda attempt: int(attempt.step[len(step["id"]) + 1 : -1]))
            visit.retries = sum(1 for a in visit.attempts if a.outcome == "retrying")
            finish = self.follow(step, outcome, state, visit)
            visit.data = dict(state.data)
            if finish is not None:
                return self.end(finish, state, step=step["id"])

    def settle(self, step: dict, state: OrderState, visit: Visit) -> Succeeded | Failed | Ended:
        """Run the step until it succeeds, fails or ends; a wait is noted, not waited."""
        while True:
            outcome = run_step(step, state, self.api_calls, self.turn)
            if isinstance(outcome, RetryLater):
                for attempt in visit.attempts:
                    if attempt.outcome == "retrying" and attempt.wait_seconds is None:
                        attempt.wait_seconds = round(outcome.delay, 1)
                        attempt.waits = "order waiting"
                state.attempt, state.step_state = outcome.attempt, outcome.step_state
                for item in state.step_state.get("items", {}).values():
                    item.pop("due", None)  # a map's items retried at once too
            elif isinstance(outcome, AwaitingCallback):
                visit.notes.append(
                    f"the order would wait up to {outcome.timeout_seconds:g} s for a callback "
                    f"to {outcome.step_state['callback']['url']}"
                )
                state.step_state = outcome.step_state
            elif isinstance(outcome, AwaitingMessage):
                visit.notes.append(
                    f"the order would wait up to {outcome.timeout_seconds:g} s for a message "
                    f"{outcome.name} for key {outcome.key}; the dry run goes on as if one came "
                    "with empty data"
                )
                waiting = {"wait": 0, "name": outcome.name, "key": outcome.key}
                self.turn.message_waiting = waiting
                state.step_state = {**outcome.step_state, "message": waiting}
            else:
                return outcome

    def follow(
        self, step: dict, outcome: Succeeded | Failed | Ended, state: OrderState, visit: Visit
    ) -> Finish | None:
        """Apply an outcome as the runner does; the Finish when the order would end."""
        outcome = masked_outcome(outcome, self.config.secret_values)
        if isinstance(outcome, Ended):
            visit.outcome, visit.error = "ended", outcome.error
            return Finish(outcome.status, outcome.error)
        if isinstance(outcome, Succeeded):
            visit.outcome, visit.saved = "succeeded", outcome.saved
            state.data = {**state.data, **visit.saved}
            state.steps_in_run += 1
            follows = what_follows(step, outcome, self.step_order)
            error = None
        else:
            visit.outcome = "failed"
            error = outcome.error
            visit.error = error.message
            follows = what_follows(step, outcome, self.step_order)
        if isinstance(follows, Finish):
            return follows
        if error is not None:
            state.steps_in_run += 1
        visit.next = follows.step
        move_to(state, follows.step, error=error)
        return None

    def end(self, finish: Finish, state: OrderState, *, step: str) -> End:
        return End(
            status=finish.status, step=step, error=self.masked(finish.error), data=dict(state.data)
        )


class DryTurn:
    """The `Turn` of `flow.py` for a dry run: answers from the samples, records, sends
    nothing, never sleeps. Parallel branches call it from their own threads."""

    def __init__(self, config: EngineConfig, samples: dict[str, list[Sample]]):
        self.config = config
        self.samples = samples
        self.visit = Visit(step="", kind="")
        self.message_waiting: dict = {}  # the message step's wait the dry run answers
        self.attempts = 0
        self._answered: dict[str, Sample] = {}  # the last sample each step path got
        self._current = threading.local()
        self._lock = threading.Lock()

    def masked(self, value: Any) -> Any:
        return mask(value, self.config.secret_values)

    def _record(self, attempt: Attempt) -> int:
        with self._lock:
            self.attempts += 1
            if self.attempts > MAX_ATTEMPTS:
                raise TooManyAttempts
            self.visit.attempts.append(attempt)
            self._current.attempt = attempt
            return len(self.visit.attempts) - 1

    def attempt_started(self, *, step: str, attempt: int, request: CallRequest) -> int:
        shown = log_request(
            request,
            secret_values=self.config.secret_values,
            max_body_bytes=self.config.log_body_bytes,
        )
        return self._record(Attempt(step=step, attempt=attempt, request=shown, response=None))

    def enter_host(self, request: CallRequest) -> Permit:
        """A dry run sends nothing, so no host's limits, pause or breaker apply."""
        return Permit(host_of(request.url))

    def leave_host(self, permit: Permit, result: calls.CallResult | None) -> None:
        pass

    def send(self, request: CallRequest, permit: Permit) -> calls.CallResult:
        attempt: Attempt = self._current.attempt
        given = self.samples.get(attempt.step) or self.samples.get(item_of(attempt.step) or "")
        given = given or [Sample()]
        sample = given[min(attempt.attempt, len(given)) - 1]
        with self._lock:
            self._answered[attempt.step] = sample
        result = sample.result()
        attempt.response = calls.log_response(
            result,
            secret_values=self.config.secret_values,
            max_body_bytes=self.config.log_body_bytes,
        )
        return result

    def attempt_finished(
        self, log_id: int, *, result: calls.CallResult | None, outcome: str, error: str = ""
    ) -> None:
        attempt = self.visit.attempts[log_id]
        attempt.outcome, attempt.error = outcome, self.masked(error)

    def attempt_refused(self, *, step: str, attempt: int, error: str) -> None:
        refused = Attempt(step=step, attempt=attempt, request=None, response=None)
        refused.outcome, refused.error = "failed", self.masked(error)
        self._record(refused)

    def sleep(self, seconds: float) -> None:
        attempt: Attempt = self._current.attempt
        attempt.wait_seconds, attempt.waits = round(seconds, 1), "in the turn"

    def thread_done(self) -> None:
        pass

    def keep_step_state(self, step_state: dict, *, at_once: bool = False) -> None:
        pass

    def step_note(self, *, step: str, note: str, failed: bool = False) -> None:
        self.visit.notes.append(self.masked(note))

    def callback_token(self, *, step: str) -> str:
        return f"dry-run.{step}"

    def open_callback(self, *, token: str, step: str, timeout_seconds: float) -> None:
        pass

    def message_status(self, wait: int) -> tuple[str, Any]:
        """The sample message: the one the step waits for, with empty data."""
        return "received", {
            "name": self.message_waiting.get("name"),
            "key": self.message_waiting.get("key"),
            "id": "dry-run",
            "data": {},
            "received_at": datetime.now(UTC).isoformat(),
        }

    def callback_status(self, token: str) -> tuple[str, Any]:
        step = token.removeprefix("dry-run.")
        callback = self._answered.get(step, Sample()).callback
        data = self.masked(callback.get("data", {}))
        return CALLBACK_OUTCOMES[callback.get("outcome", "success")], data
