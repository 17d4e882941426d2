"""The closed set of step outcomes: what one step of a blueprint comes to, as plain data
(orders/engine/flow.py makes them, the runner persists them, the dry run shows them)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from expressions.secrets import mask
from hosts.gate import Hold


@dataclass(frozen=True)
class StepError:
    """The failure that sends an order down an `on_failed` path; templates see it as `error`."""

    step: str
    message: str
    status: int | None = None
    items: list | None = None  # a map's failed items: `{"index", "error", "status"}` each

    def as_context(self) -> dict:
        context = {"step": self.step, "message": self.message, "status": self.status}
        return context if self.items is None else {**context, "items": self.items}


@dataclass(frozen=True)
class Succeeded:
    """The step is done: merge `saved` into `data` and go on."""

    saved: dict = field(default_factory=dict)
    next_step: str | None = None


@dataclass(frozen=True)
class Failed:
    """The step failed after its retries: take `on_failed`, or fail the order. `kept`:
    the step state a reprocess from this step starts with (a map's items that succeeded)."""

    error: StepError
    kept: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RetryLater:
    """A retry is due in `delay` seconds, too long to sleep in this turn."""

    delay: float
    attempt: int
    step_state: dict


@dataclass(frozen=True)
class HeldBack:
    """The call's host may not be called now (paused, breaker open, over a limit): the
    order waits `hold.delay` seconds; nothing was sent and no attempt is counted."""

    hold: Hold
    step_path: str
    attempt: int
    step_state: dict


@dataclass(frozen=True)
class AwaitingCallback:
    """The call went out; the order waits for its callback until `timeout_seconds` pass."""

    token: str
    timeout_seconds: float
    step_state: dict
    starts_wait: bool = True  # False when an order already waiting is looked at again


@dataclass(frozen=True)
class AwaitingMessage:
    """The order waits for a partner's message of `name` and `key` until `timeout_seconds`
    pass (a new wait), or, with `wait`, goes on waiting for the message of that wait."""

    name: str
    key: str
    timeout_seconds: float
    step_state: dict
    wait: int | None = None


@dataclass(frozen=True)
class Ended:
    """An `end` step finished the order."""

    status: str
    error: str = ""


Outcome = Succeeded | Failed | RetryLater | HeldBack | AwaitingCallback | AwaitingMessage | Ended


def masked_outcome(outcome: Outcome, secret_values: list[str]) -> Outcome:
    """The outcome with every secret masked: what the runner keeps, logs and writes, and
    what the dry run shows, all come from this one place.

    >>> failed = Failed(StepError("charge", "HTTP 401 for key s3cr3t", 401))
    >>> masked_outcome(failed, ["s3cr3t"]).error
    StepError(step='charge', message='HTTP 401 for key ***', status=401, items=None)
    """
    if isinstance(outcome, Succeeded):
        return replace(outcome, saved=mask(outcome.saved, secret_values))
    if isinstance(outcome, Failed):
        error = outcome.error
        items = None if error.items is None else mask(error.items, secret_values)
        masked = replace(error, message=mask(error.message, secret_values), items=items)
        return Failed(masked, kept=masked_state(outcome.kept, secret_values))
    if isinstance(outcome, Ended):
        return replace(outcome, error=mask(outcome.error, secret_values))
    step_state = masked_state(outcome.step_state, secret_values)
    if isinstance(outcome, HeldBack):
        hold = replace(outcome.hold, reason=mask(outcome.hold.reason, secret_values))
        return replace(outcome, hold=hold, step_state=step_state)
    return replace(outcome, step_state=step_state)


def masked_state(step_state: dict, secret_values: list[str]) -> dict:
    """A step's state masked, but for the callback's token and URL: the engine's own
    values, which find the callback again (a short secret may happen to be part of one).

    >>> state = {"callback": {"token": "ab12cd", "url": "http://x/ab12cd/", "response": "12"}}
    >>> masked_state(state, ["12"])["callback"]
    {'token': 'ab12cd', 'url': 'http://x/ab12cd/', 'response': '***'}
    """
    masked = mask(step_state, secret_values)
    callback = step_state.get("callback")
    if isinstance(callback, dict) and isinstance(masked.get("callback"), dict):
        kept = {key: callback[key] for key in ("token", "url") if key in callback}
        masked["callback"] = {**masked["callback"], **kept}
    return masked
