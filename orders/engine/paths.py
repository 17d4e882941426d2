"""Where an order goes after a step: the flow rules of contract section 3, shared by the
runner (which persists each move) and the dry run (which only shows it).

>>> order = ["validate", "charge", "reject"]
>>> what_follows({"id": "validate", "call": "shop.quote"}, Succeeded(), order)
GoTo(step='charge')
>>> charge = {"id": "charge", "call": "payments.charge", "on_failed": "reject"}
>>> what_follows(charge, Failed(StepError("charge", "HTTP 402", 402)), order)
GoTo(step='reject')
>>> what_follows({"id": "charge", "call": "payments.charge"}, Succeeded(), order[:2])
Finish(status='completed', error='')
>>> what_follows({"id": "charge", "call": "c"}, Failed(StepError("charge", "HTTP 402")), order)
Finish(status='failed', error='step "charge": HTTP 402')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from definitions.graph import COMPLETED, FAILED, after_failure, after_success
from orders.engine.flow import OrderState
from orders.engine.outcomes import Failed, StepError, Succeeded


@dataclass(frozen=True)
class GoTo:
    """The order moves on to `step`."""

    step: str


@dataclass(frozen=True)
class Finish:
    """The order ends with `status` ("completed" or "failed")."""

    status: str
    error: str = ""


def what_follows(
    step: Mapping, outcome: Succeeded | Failed, step_order: Sequence[str]
) -> GoTo | Finish:
    """The flow graph's edge for the outcome (definitions.graph), as a move or an end."""
    if isinstance(outcome, Failed):
        edge = after_failure(step)
        if edge.target is None:
            return Finish(FAILED, f'step "{outcome.error.step}": {outcome.error.message}')
        return GoTo(edge.target)
    edge = after_success(step, step_order, outcome.next_step)
    if edge.target is not None:
        return GoTo(edge.target)
    error = "" if edge.ends == COMPLETED else f'step "{step["id"]}" ended the order'
    return Finish(edge.ends, error)


def refusal_before_step(
    state: OrderState, steps: Mapping[str, Mapping], max_steps_per_run: int
) -> Finish | None:
    """Why the run stops before its current step (a loop, a step the blueprint lost)."""
    if state.steps_in_run >= max_steps_per_run:
        return Finish(
            "failed",
            f"the run executed more than {max_steps_per_run} steps "
            f"(STATE_MANAGER_MAX_STEPS_PER_RUN); stopped before step "
            f'"{state.current_step}"',
        )
    if state.current_step not in steps:
        return Finish("failed", f'no step "{state.current_step}" in the blueprint')
    return None


def move_to(state: OrderState, step_id: str, *, error: StepError | None = None) -> None:
    """Point the state at the next step with a fresh attempt count. The failure that led
    to an `on_failed` path stays visible to its templates as `error` until another one."""
    state.current_step = step_id
    state.attempt = 0
    if error is not None:
        state.step_state = {"error": error.as_context()}
    elif "error" in state.step_state:
        state.step_state = {"error": state.step_state["error"]}
    else:
        state.step_state = {}
