"""One step of a blueprint in, one outcome out.

The functions here know the blueprint language (call, choice, parallel, end, `next`,
`on_failed`, `save`, retries, callbacks) and nothing of the database: reading and
writing an order is the runner's job, done through the `Turn` it passes in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from apicalls import reasons
from apicalls.rendering import CallRequest, render_request
from core.storable import text_problem
from definitions.graph import step_kind
from expressions import ExpressionError, is_true, render
from expressions.names import order_name
from hosts.gate import Hold, Permit
from orders.engine import calls, retry
from orders.engine.config import EngineConfig
from orders.engine.maps import run_map_step
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
)

IDEMPOTENCY_NAMESPACE = uuid.UUID("8f6f7c1e-2a55-4f3e-9a53-3c1c1e4b7d10")


@dataclass
class OrderState:
    """The parts of an order the engine reads, as plain data."""

    order_id: str
    workflow: str
    created_at: str
    run: int
    input: Any
    data: dict
    current_step: str
    attempt: int = 0
    steps_in_run: int = 0
    step_state: dict = field(default_factory=dict)
    resume_point: dict = field(default_factory=dict)
    internal_id: int = 0


class Turn(Protocol):
    """What a step may ask of the runner that drives it."""

    config: EngineConfig

    def attempt_started(self, *, step: str, attempt: int, request: CallRequest) -> int: ...

    def enter_host(self, request: CallRequest) -> Permit | Hold:
        """Pass the gate of the request's host (hosts.gate), waiting briefly for a slot."""

    def leave_host(self, permit: Permit, result: calls.CallResult | None) -> None:
        """The call is over (`result` None: it was not sent): free its slot, count it."""

    def send(self, request: CallRequest, permit: Permit) -> calls.CallResult:
        """Send the request once the permit's slot has come."""

    def attempt_finished(
        self,
        log_id: int,
        *,
        result: calls.CallResult | None,
        outcome: str,
        error: str = "",
    ) -> None: ...

    def attempt_refused(self, *, step: str, attempt: int, error: str) -> None: ...

    def sleep(self, seconds: float) -> None: ...

    def thread_done(self) -> None: ...

    def keep_step_state(self, step_state: dict, *, at_once: bool = False) -> None:
        """Write the step's state (a map's items) with the next write, or `at_once`."""

    def step_note(self, *, step: str, note: str, failed: bool = False) -> None: ...

    def callback_token(self, *, step: str) -> str: ...

    def callback_status(self, token: str) -> tuple[str, Any]:
        """(status, posted data) of a callback; "expired" once its timeout has passed."""

    def open_callback(self, *, token: str, step: str, timeout_seconds: float) -> None: ...

    def message_status(self, wait: int) -> tuple[str, Any]:
        """(status, the message as `save` sees it) of a message wait; "timed out" once its
        time has passed without one."""


def base_context(state: OrderState, turn: Turn) -> dict:
    """The names every template sees (contract section 4)."""
    return {
        "input": state.input,
        "data": state.data,
        "order": order_name(
            order_id=state.order_id,
            workflow=state.workflow,
            created_at=state.created_at,
            run=state.run,
        ),
        "secrets": dict(turn.config.secrets),
        "error": state.step_state.get("error"),
        "params": {},
    }


def idempotency_key(state: OrderState, step_path: str) -> str:
    """Stable for every attempt of one step visit in one run, crash re-runs included."""
    name = f"{state.internal_id}:{state.order_id}:{state.run}:{state.steps_in_run}:{step_path}"
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, name))


def run_step(
    step: Mapping, state: OrderState, api_calls: Mapping[str, dict], turn: Turn
) -> Outcome:
    kind = step_kind(step)
    if kind == "call":
        return run_call_step(step, state, api_calls, turn)
    if kind == "choice":
        return run_choice_step(step, state, turn)
    if kind == "parallel":
        return run_parallel_step(step, state, api_calls, turn)
    if kind == "message":
        return run_message_step(step, state, turn)
    if kind == "map":
        context = base_context(state, turn)
        return run_map_step(
            step, state, api_calls, turn, context=context, item_runners=ITEM_RUNNERS
        )
    failed = step["end"] == "failed"
    turn.step_note(step=step["id"], note=step.get("error") or f"end: {step['end']}", failed=failed)
    return Ended(status=step["end"], error=step.get("error", ""))


def run_choice_step(step: Mapping, state: OrderState, turn: Turn) -> Outcome:
    context = base_context(state, turn)
    for index, branch in enumerate(step["choice"]):
        try:
            chosen = is_true(branch["when"], context)
        except ExpressionError as exc:
            message = f"choice[{index}].when: {exc}"
            turn.step_note(step=step["id"], note=message, failed=True)
            return Failed(StepError(step["id"], message))
        if chosen:
            turn.step_note(step=step["id"], note=f"choice[{index}]: next {branch['next']}")
            return Succeeded(next_step=branch["next"])
    turn.step_note(step=step["id"], note=f"default: next {step['default']}")
    return Succeeded(next_step=step["default"])


def run_message_step(step: Mapping, state: OrderState, turn: Turn) -> Outcome:
    """Wait for a partner's message of the step's name and key; then `save` sees it.

    The first time, the key is rendered and the runner starts the wait (which may take a
    message kept from before at once); afterwards the wait's status decides."""
    spec, step_id = step["message"], step["id"]
    context = base_context(state, turn)
    waiting = state.step_state.get("message")
    if not isinstance(waiting, dict):
        try:
            key = render(spec["key"], context)
        except ExpressionError as exc:
            turn.step_note(step=step_id, note=f"message.key: {exc}", failed=True)
            return Failed(StepError(step_id, f"message.key: {exc}"))
        if key is None or key == "" or isinstance(key, dict | list):
            note = f"message.key: {spec['key']} gave {json.dumps(key)}, not a key"
            turn.step_note(step=step_id, note=note, failed=True)
            return Failed(StepError(step_id, note))
        key = key if isinstance(key, str) else json.dumps(key)
        problem = "is over 500 characters" if len(key) > 500 else text_problem(key)
        if problem:
            turn.step_note(step=step_id, note=f"message.key: {problem}", failed=True)
            return Failed(StepError(step_id, f"message.key: {problem}"))
        return AwaitingMessage(spec["name"], key, spec["timeout_seconds"], dict(state.step_state))
    status, message = turn.message_status(waiting["wait"])
    name, key = waiting["name"], waiting["key"]
    if status == "waiting":
        timeout = spec["timeout_seconds"]
        return AwaitingMessage(name, key, timeout, dict(state.step_state), wait=waiting["wait"])
    if status == "received":
        try:
            saved = render(step.get("save") or {}, {**context, "message": message})
        except ExpressionError as exc:
            turn.step_note(step=step_id, note=f"save: {exc}", failed=True)
            return Failed(StepError(step_id, f"save: {exc}"))
        turn.step_note(step=step_id, note=f"message {name} for key {key} taken")
        return Succeeded(saved=saved, next_step=step.get("next"))
    error = f"no message {name} for key {key} within {spec['timeout_seconds']:g} s"
    turn.step_note(step=step_id, note=error, failed=True)
    return Failed(StepError(step_id, error))


def run_call_step(
    step: Mapping,
    state: OrderState,
    api_calls: Mapping[str, dict],
    turn: Turn,
    *,
    step_path: str | None = None,
    attempt: int | None = None,
    step_state: dict | None = None,
    names: Mapping | None = None,
) -> Outcome:
    """Send the step's API call, retrying as its policy allows.

    `step_path` names a parallel branch (`fulfil.ship`) or a map's item (`reserve[3]`);
    they keep their own attempt counts and callback state, which the caller passes in, and
    an item's templates see the item's `names`.
    """
    step_path = step_path or step["id"]
    step_state = dict(state.step_state if step_state is None else step_state)
    step_state.pop("held", None)  # the runner keeps the record of the order's holds
    attempt = state.attempt if attempt is None else attempt
    api_call = api_calls[step["call"]]
    context = {**base_context(state, turn), **(names or {})}
    waits = step.get("wait_for_callback")

    if waits and "callback" in step_state:
        return resume_after_callback(step, step_path, api_call, context, step_state, turn)

    try:
        context["params"] = render(step.get("params") or {}, context)
    except ExpressionError as exc:
        turn.attempt_refused(step=step_path, attempt=attempt + 1, error=f"params: {exc}")
        return Failed(StepError(step_path, f"params: {exc}"))
    if waits:
        token = turn.callback_token(step=step_path)
        context["callback"] = {"url": callback_url(turn.config.public_url, token), "token": token}
        turn.open_callback(token=token, step=step_path, timeout_seconds=waits["timeout_seconds"])

    policy = retry.policy_for(api_call, step)
    key = idempotency_key(state, step_path)
    while True:
        attempt += 1
        try:
            request = render_request(api_call, context, idempotency_key=key)
        except ExpressionError as exc:
            turn.attempt_refused(step=step_path, attempt=attempt, error=str(exc))
            return Failed(StepError(step_path, str(exc)))
        passage = turn.enter_host(request)
        if isinstance(passage, Hold):
            return HeldBack(passage, step_path, attempt - 1, step_state)
        result = None
        try:
            log_id = turn.attempt_started(step=step_path, attempt=attempt, request=request)
            result = turn.send(request, passage)
        finally:
            turn.leave_host(passage, result)
        outcome = settle_attempt(step, step_path, api_call, context, result, waits, turn, log_id)
        if outcome is not None:
            return outcome
        error = result.error or reasons.reason_for(
            api_call, calls.response_context(result), context
        )
        if retry.can_retry(policy, attempt, result):
            delay = retry.retry_delay(policy, attempt, retry_after=result.retry_after)
            if delay > turn.config.max_inline_wait_seconds:
                turn.attempt_finished(log_id, result=result, outcome="retrying", error=error)
                return RetryLater(delay=delay, attempt=attempt, step_state=step_state)
            turn.attempt_finished(log_id, result=result, outcome="retrying", error=error)
            turn.sleep(delay)
            continue
        turn.attempt_finished(log_id, result=result, outcome="failed", error=error)
        return Failed(StepError(step_path, error, result.status))


def settle_attempt(
    step: Mapping,
    step_path: str,
    api_call: Mapping,
    context: dict,
    result: calls.CallResult,
    waits: Mapping | None,
    turn: Turn,
    log_id: int,
) -> Outcome | None:
    """Decide a sent attempt: an outcome when it succeeded (or its templates broke), else None."""
    response = calls.response_context(result)
    try:
        succeeded = result.status is not None and calls.is_success(api_call, result, context)
    except ExpressionError as exc:
        turn.attempt_finished(log_id, result=result, outcome="failed", error=f"success_when: {exc}")
        return Failed(StepError(step_path, f"success_when: {exc}", result.status))
    if not succeeded:
        return None
    if waits:
        turn.attempt_finished(log_id, result=result, outcome="waiting")
        callback = context["callback"]
        return AwaitingCallback(
            token=callback["token"],
            timeout_seconds=waits["timeout_seconds"],
            step_state={
                "callback": {**callback, "response": response, "params": context["params"]}
            },
        )
    try:
        saved = render_save(step, api_call, {**context, "response": response})
    except ExpressionError as exc:
        turn.attempt_finished(log_id, result=result, outcome="failed", error=f"save: {exc}")
        return Failed(StepError(step_path, f"save: {exc}", result.status))
    turn.attempt_finished(log_id, result=result, outcome="succeeded")
    return Succeeded(saved=saved, next_step=step.get("next"))


def resume_after_callback(
    step: Mapping,
    step_path: str,
    api_call: Mapping,
    context: dict,
    step_state: dict,
    turn: Turn,
) -> Outcome:
    """The second half of a `wait_for_callback` step: the callback came, failed or timed out."""
    waiting = step_state["callback"]
    status, data = turn.callback_status(waiting["token"])
    timeout = step["wait_for_callback"]["timeout_seconds"]
    if status == "waiting":
        return AwaitingCallback(
            token=waiting["token"],
            timeout_seconds=timeout,
            step_state=step_state,
            starts_wait=False,
        )
    if status == "succeeded":
        context["params"] = waiting.get("params", {})
        context["callback"] = {"url": waiting["url"], "token": waiting["token"], "data": data}
        try:
            saved = render_save(step, api_call, {**context, "response": waiting["response"]})
        except ExpressionError as exc:
            turn.step_note(step=step_path, note=f"save: {exc}", failed=True)
            return Failed(StepError(step_path, f"save: {exc}"))
        turn.step_note(step=step_path, note="callback received: success")
        return Succeeded(saved=saved, next_step=step.get("next"))
    message = (
        "the callback reported a failure"
        if status == "failed"
        else f"no callback within {timeout} seconds"
    )
    turn.step_note(step=step_path, note=message, failed=True)
    return Failed(StepError(step_path, message))


def render_save(step: Mapping, api_call: Mapping, context: dict) -> dict:
    """A step's `save` replaces the API call's default `save` as a whole."""
    save = step["save"] if "save" in step else api_call.get("save") or {}
    return render(save, context)


def callback_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/api/callbacks/{token}/"


def run_parallel_step(
    step: Mapping, state: OrderState, api_calls: Mapping[str, dict], turn: Turn
) -> Outcome:
    """Run the branches not yet done at the same time and join them.

    Each branch keeps its attempt count and saved values in `step_state["branches"]`,
    so a branch that must wait for a retry does not re-run the branches that succeeded.
    """
    branches_state: dict = {
        branch_id: dict(branch_state)
        for branch_id, branch_state in state.step_state.get("branches", {}).items()
    }
    todo = [
        branch
        for branch in step["parallel"]
        if branches_state.get(branch["id"], {}).get("status") not in ("done", "failed")
    ]

    def run_branch(branch: Mapping) -> Outcome:
        branch_state = branches_state.get(branch["id"], {})
        try:
            return run_call_step(
                branch,
                state,
                api_calls,
                turn,
                step_path=f"{step['id']}.{branch['id']}",
                attempt=branch_state.get("attempt", 0),
                step_state={},
            )
        finally:
            turn.thread_done()

    with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
        outcomes = list(pool.map(run_branch, todo))

    failures: list[StepError] = []
    later: list[RetryLater] = []
    held: list[HeldBack] = []
    for branch, outcome in zip(todo, outcomes, strict=True):
        if isinstance(outcome, Succeeded):
            branches_state[branch["id"]] = {"status": "done", "saved": outcome.saved}
        elif isinstance(outcome, RetryLater):
            branches_state[branch["id"]] = {"status": "retrying", "attempt": outcome.attempt}
            later.append(outcome)
        elif isinstance(outcome, HeldBack):
            branches_state[branch["id"]] = {"status": "held", "attempt": outcome.attempt}
            held.append(outcome)
        elif isinstance(outcome, Failed):
            branches_state[branch["id"]] = {"status": "failed", "error": outcome.error.message}
            failures.append(outcome.error)

    new_state = {**state.step_state, "branches": branches_state}
    new_state.pop("held", None)
    if held:
        # The branches that could go went; the step waits for the held ones' hosts.
        first = min(held, key=lambda outcome: outcome.hold.delay)
        if later:
            delay = min(first.hold.delay, *(outcome.delay for outcome in later))
            return RetryLater(delay=delay, attempt=state.attempt, step_state=new_state)
        return HeldBack(first.hold, first.step_path, state.attempt, new_state)
    if later:
        soonest = min(later, key=lambda outcome: outcome.delay)
        return RetryLater(delay=soonest.delay, attempt=state.attempt, step_state=new_state)
    failed = [b for b in step["parallel"] if branches_state[b["id"]]["status"] == "failed"]
    if failed:
        first = failures[0] if failures else None
        message = "; ".join(f"{b['id']}: {branches_state[b['id']]['error']}" for b in failed)
        return Failed(StepError(step["id"], message, first.status if first else None))
    saved: dict = {}
    for branch in step["parallel"]:
        saved.update(branches_state[branch["id"]]["saved"])
    return Succeeded(saved=saved, next_step=step.get("next"))


# The work of one item of a map step (orders/engine/maps.py), by what the map runs.
ITEM_RUNNERS = {"call": run_call_step}
