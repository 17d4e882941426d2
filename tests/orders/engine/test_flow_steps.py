"""`flow.py` on its own: one step in, one outcome out, driven by a fake turn.

No database (no `db` fixture: any query would fail) and no HTTP server: the fake turn
answers each request from a list of canned results and records what the flow asked.
"""

from __future__ import annotations

import pytest

from hosts.gate import Hold, Permit
from hosts.names import host_of
from orders.engine.calls import CallResult
from orders.engine.config import EngineConfig
from orders.engine.flow import OrderState, run_step
from orders.engine.outcomes import (
    AwaitingCallback,
    Ended,
    Failed,
    HeldBack,
    RetryLater,
    StepError,
    Succeeded,
)

CONFIG = EngineConfig(
    max_steps_per_run=100,
    outbound_allow=[],
    max_inline_wait_seconds=5.0,
    public_url="https://sm.example",
    log_body_bytes=4096,
    token_key=b"k",
    secrets={"TOKEN": "s3cret"},
)

API_CALLS = {
    "quote": {
        "slug": "quote",
        "name": "Quote",
        "method": "POST",
        "url": "https://shop.example/quotes",
        "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"},
        "body": {"sku": "{{ input.sku }}", "qty": "{{ params.qty }}"},
        "save": {"total": "{{ response.body.total }}"},
    },
    "ship": {"slug": "ship", "name": "Ship", "method": "POST", "url": "https://ship.example/"},
}


class FakeTurn:
    """The runner's side of a step, in memory."""

    config = CONFIG

    def __init__(self, *results: CallResult, callback=("waiting", None), holds=()):
        self.results = list(results)
        self.holds = list(holds)
        self.left: list[tuple[str, int | None]] = []
        self.sent: list = []
        self.notes: list[tuple[str, str, bool]] = []
        self.attempts: list[tuple[str, int, str, str]] = []  # step, attempt, outcome, error
        self.slept: list[float] = []
        self.callbacks_opened: list[str] = []
        self.callback = callback

    def attempt_started(self, *, step, attempt, request) -> int:
        self.attempts.append((step, attempt, "in_flight", ""))
        return len(self.attempts) - 1

    def enter_host(self, request):
        if self.holds:
            return self.holds.pop(0)
        return Permit(host_of(request.url))

    def leave_host(self, permit, result) -> None:
        self.left.append((permit.host, None if result is None else result.status))

    def send(self, request, permit) -> CallResult:
        self.sent.append(request)
        return self.results.pop(0)

    def attempt_finished(self, log_id, *, result, outcome, error="") -> None:
        step, attempt, _, _ = self.attempts[log_id]
        self.attempts[log_id] = (step, attempt, outcome, error)

    def attempt_refused(self, *, step, attempt, error) -> None:
        self.attempts.append((step, attempt, "refused", error))

    def sleep(self, seconds) -> None:
        self.slept.append(seconds)

    def thread_done(self) -> None:
        pass

    def step_note(self, *, step, note, failed=False) -> None:
        self.notes.append((step, note, failed))

    def callback_token(self, *, step) -> str:
        return f"token-{step}"

    def open_callback(self, *, token, step, timeout_seconds) -> None:
        self.callbacks_opened.append(token)

    def callback_status(self, token):
        return self.callback


def state(**changes) -> OrderState:
    values = {
        "order_id": "A-1",
        "workflow": "shop",
        "created_at": "2026-11-26T10:00:00+00:00",
        "run": 1,
        "input": {"sku": "tee", "express": True},
        "data": {},
        "current_step": "quote",
    }
    return OrderState(**{**values, **changes})


def ok(body=None, status=200) -> CallResult:
    return CallResult(status=status, body=body if body is not None else {})


QUOTE = {"id": "quote", "call": "quote", "params": {"qty": 2}}


def test_a_call_step_that_succeeds_saves_its_values_and_goes_on():
    turn = FakeTurn(ok({"total": 12.5}))

    outcome = run_step({**QUOTE, "next": "pay"}, state(), API_CALLS, turn)

    assert outcome == Succeeded(saved={"total": 12.5}, next_step="pay")
    request = turn.sent[0]
    assert request.body == {"sku": "tee", "qty": 2}
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert turn.attempts == [("quote", 1, "succeeded", "")]


def test_a_short_retry_waits_in_the_turn_and_tries_again():
    turn = FakeTurn(ok(status=503), ok({"total": 1}))
    step = {**QUOTE, "retry": {"max_attempts": 3, "backoff_seconds": 1}}

    outcome = run_step(step, state(), API_CALLS, turn)

    assert outcome == Succeeded(saved={"total": 1})
    assert len(turn.slept) == 1 and 0.5 <= turn.slept[0] <= 1  # half of it is jitter
    assert [(a[1], a[2]) for a in turn.attempts] == [(1, "retrying"), (2, "succeeded")]
    assert turn.sent[0].headers["Idempotency-Key"] == turn.sent[1].headers["Idempotency-Key"]


def test_a_long_retry_wait_ends_the_turn_with_retry_later():
    turn = FakeTurn(ok(status=503))
    step = {**QUOTE, "retry": {"max_attempts": 3, "backoff_seconds": 60}}

    outcome = run_step(step, state(), API_CALLS, turn)

    assert isinstance(outcome, RetryLater)
    assert 30 <= outcome.delay <= 60 and outcome.attempt == 1
    assert turn.slept == []


def test_a_call_that_keeps_failing_fails_the_step_with_its_status():
    turn = FakeTurn(ok(status=422))

    outcome = run_step(QUOTE, state(), API_CALLS, turn)

    assert outcome == Failed(StepError("quote", "HTTP 422", 422))


def test_a_params_expression_that_breaks_fails_the_step_before_anything_is_sent():
    turn = FakeTurn()

    outcome = run_step(
        {"id": "quote", "call": "quote", "params": {"qty": "{{ input.nosuch }}"}},
        state(),
        API_CALLS,
        turn,
    )

    assert isinstance(outcome, Failed) and outcome.error.message.startswith("params:")
    assert turn.sent == []
    assert turn.attempts[0][2] == "refused"


def test_a_choice_takes_the_first_branch_that_holds():
    turn = FakeTurn()
    step = {
        "id": "route",
        "choice": [
            {"when": "{{ input.sku == 'cup' }}", "next": "cups"},
            {"when": "{{ input.express }}", "next": "express"},
        ],
        "default": "standard",
    }

    assert run_step(step, state(), API_CALLS, turn) == Succeeded(next_step="express")
    assert turn.notes == [("route", "choice[1]: next express", False)]


def test_a_choice_whose_condition_breaks_fails_naming_the_branch():
    turn = FakeTurn()
    step = {"id": "route", "choice": [{"when": "{{ 1 / 0 }}", "next": "x"}], "default": "y"}

    outcome = run_step(step, state(), API_CALLS, turn)

    assert isinstance(outcome, Failed)
    assert outcome.error.message.startswith("choice[0].when:")


def test_an_end_step_ends_the_order_with_its_status():
    turn = FakeTurn()

    outcome = run_step({"id": "stop", "end": "failed", "error": "out of stock"}, state(), {}, turn)

    assert outcome == Ended(status="failed", error="out of stock")
    assert turn.notes == [("stop", "out of stock", True)]


def test_parallel_branches_merge_their_saved_values():
    turn = FakeTurn(ok({"total": 3}), ok())
    step = {
        "id": "both",
        "parallel": [
            {"id": "q", "call": "quote", "params": {"qty": 1}},
            {"id": "s", "call": "ship", "save": {"shipped": True}},
        ],
    }

    outcome = run_step(step, state(), API_CALLS, turn)

    assert outcome == Succeeded(saved={"total": 3, "shipped": True})


def test_a_failed_parallel_branch_fails_the_step_naming_the_branch():
    turn = FakeTurn(ok(status=500), ok(status=500))
    step = {"id": "both", "parallel": [{"id": "q", "call": "ship"}, {"id": "s", "call": "ship"}]}

    outcome = run_step(step, state(), API_CALLS, turn)

    assert outcome == Failed(StepError("both", "q: HTTP 500; s: HTTP 500", 500))


@pytest.mark.parametrize(
    "callback, expected",
    [
        (("succeeded", {"ok": 1}), Succeeded(saved={"from_callback": 1})),
        (("failed", None), Failed(StepError("wait", "the callback reported a failure"))),
        (("expired", None), Failed(StepError("wait", "no callback within 30 seconds"))),
    ],
)
def test_a_callback_step_waits_then_follows_what_the_callback_said(callback, expected):
    step = {
        "id": "wait",
        "call": "ship",
        "wait_for_callback": {"timeout_seconds": 30},
        "save": {"from_callback": "{{ callback.data.ok }}"},
    }
    turn = FakeTurn(ok(), callback=callback)

    waiting = run_step(step, state(current_step="wait"), API_CALLS, turn)

    assert isinstance(waiting, AwaitingCallback)
    assert waiting.token == "token-wait" and turn.callbacks_opened == ["token-wait"]
    resumed = run_step(
        step, state(current_step="wait", step_state=waiting.step_state), API_CALLS, turn
    )
    assert resumed == expected


PAUSED = Hold("shop.example", "paused", "host shop.example is paused", 30.0)


def test_a_held_call_sends_nothing_and_counts_no_attempt():
    turn = FakeTurn(holds=[PAUSED])

    outcome = run_step(QUOTE, state(attempt=2), API_CALLS, turn)

    assert outcome == HeldBack(PAUSED, "quote", 2, {})
    assert turn.sent == [] and turn.attempts == [] and turn.left == []


def test_a_hold_after_an_inline_retry_keeps_the_attempt_made():
    turn = FakeTurn(ok(status=503), holds=[Permit("shop.example"), PAUSED])
    step = {**QUOTE, "retry": {"max_attempts": 3, "backoff_seconds": 1}}

    outcome = run_step(step, state(), API_CALLS, turn)

    assert isinstance(outcome, HeldBack) and outcome.attempt == 1
    assert turn.left == [("shop.example", 503)]


def test_a_held_parallel_branch_holds_the_step_and_keeps_what_the_other_did():
    turn = FakeTurn(ok(), holds=[Permit("ship.example"), PAUSED])
    step = {
        "id": "both",
        "parallel": [
            {"id": "s", "call": "ship", "save": {"shipped": True}},
            {"id": "q", "call": "quote", "params": {"qty": 1}},
        ],
    }

    outcome = run_step(step, state(current_step="both"), API_CALLS, turn)

    assert isinstance(outcome, HeldBack) and outcome.hold == PAUSED
    branches = outcome.step_state["branches"]
    assert branches["s"] == {"status": "done", "saved": {"shipped": True}}
    assert branches["q"] == {"status": "held", "attempt": 0}
