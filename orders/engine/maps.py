"""The map step: its inner call (or child blueprint) once per item of a list.

Each item is its own series of attempts, logged as `<step id>[<index>]` with its own
`Idempotency-Key`, run by at most `max_concurrency` threads of the order's turn (never
one per item), each holding one of the batch's item slots (`STATE_MANAGER_CONCURRENCY`
across its orders, `EngineConfig.map_item_slots`). What each item came to is kept in
the step's state under `items` (`{"<index>": {"status": "done", "saved": {...}}}`, or
"failed", "retrying", "held"), written with the next item's attempt row (or at once
when no item follows): an item costs the one commit its attempt needs, and a crash
repeats only the items in flight.

>>> item_key_order({"2": {}, "10": {}, "1": {}})
[1, 2, 10]
>>> failure_message([{"index": 3, "error": "HTTP 500"}], total=5, tolerated=0)
'1 of 5 items failed (0 tolerated): [3] HTTP 500'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apicalls.rendering import CallRequest
from definitions.map_steps import inner_kind, item_name
from expressions import ExpressionError, render
from orders.engine.outcomes import (
    Failed,
    HeldBack,
    Outcome,
    RetryLater,
    StepError,
    Succeeded,
)

DONE, FAILED, RETRYING, HELD = "done", "failed", "retrying", "held"
# The failed items an error's message names; `error.items` lists them all.
NAMED_FAILURES = 10

# The work of one item: `(inner spec, state, api_calls, turn, *, step_path, attempt,
# step_state, names) -> Outcome` (a call's is flow's `run_call_step`), one function for
# each kind of inner work, given by orders.engine.flow
# (which dispatches to this module, so this module does not import it).
ItemRunner = Callable[..., Outcome]


def run_map_step(
    step: Mapping,
    state: Any,
    api_calls: Mapping[str, dict],
    turn: Any,
    *,
    context: dict,
    item_runners: Mapping[str, ItemRunner],
) -> Outcome:
    """Run the items not yet done, then succeed with the map's `save` over `results`, or
    fail once more items failed than tolerated, or wait for the items that must wait.

    `state` and `turn` are the flow's `OrderState` and `Turn`; `context` the names every
    template of the step sees; `item_runners` the work of one item by inner kind ("call",
    "blueprint"): a kind missing there fails the step saying so."""
    spec, step_id = step["map"], step["id"]
    items = evaluated_items(spec, context, turn.config.max_map_items)
    if isinstance(items, str):
        turn.step_note(step=step_id, note=items, failed=True)
        return Failed(StepError(step_id, items))
    run_item = item_runners.get(inner_kind(spec) or "")
    if run_item is None:
        error = "map: items of a child blueprint cannot run: this engine has no child orders"
        turn.step_note(step=step_id, note=error, failed=True)
        return Failed(StepError(step_id, error))
    mapping = ItemsRun(step, state, api_calls, turn, items, run_item, context)
    mapping.run()
    return mapping.outcome()


def evaluated_items(spec: Mapping, context: dict, max_items: int) -> list | str:
    """The list to map over, or why there is none."""
    try:
        items = render(spec["items"], context)
    except ExpressionError as exc:
        return f"map.items: {exc}"
    if not isinstance(items, list):
        kind = "an object" if isinstance(items, dict) else type(items).__name__
        return f"map.items: {spec['items']} gave {kind}, not a list"
    if len(items) > max_items:
        return f"map.items: {len(items)} items, more than {max_items} (STATE_MANAGER_MAX_MAP_ITEMS)"
    return items


class ItemsRun:
    """One visit of a map step in one turn: a pool of threads takes the items to run in
    order until none is left, too many failed, a host held one, or the turn must stop."""

    def __init__(
        self,
        step: Mapping,
        state: Any,
        api_calls: Mapping[str, dict],
        turn: Any,
        items: list,
        run_item: ItemRunner,
        context: dict,
    ):
        self.context = context
        self.step, self.spec, self.state = step, step["map"], state
        self.api_calls, self.turn, self.items, self.run_item = api_calls, turn, items, run_item
        self.tolerated = self.spec.get("tolerated_failures", 0)
        self.kept: dict[str, dict] = {
            key: dict(value)
            for key, value in (state.step_state.get("items") or {}).items()
            if key.isdigit() and int(key) < len(items)
        }
        self.later: dict[int, float] = {}  # item: seconds until its retry is due
        self.holds: list[HeldBack] = []
        self.stopped: BaseException | None = None  # a cancel or a lost claim, raised at the end
        self.lock = threading.Lock()
        self.failed = sum(1 for value in self.kept.values() if value.get("status") == FAILED)
        now = time.time()
        self.todo = [index for index in range(len(items)) if self._runs_now(index, now)]
        self.item_turn = ItemTurn(self)

    def _runs_now(self, index: int, now: float) -> bool:
        kept = self.kept.get(str(index), {})
        if kept.get("status") in (DONE, FAILED):
            return False
        if kept.get("status") == RETRYING and kept.get("due", 0) > now + 0.05:
            self.later[index] = kept["due"] - now
            return False
        return True

    def failures(self) -> list[dict]:
        return [
            {"index": int(key), "error": value.get("error", ""), "status": value.get("http_status")}
            for key, value in sorted(self.kept.items(), key=lambda kv: int(kv[0]))
            if value.get("status") == FAILED
        ]

    def done(self) -> dict[str, dict]:
        """The items that succeeded: a reprocess from this step keeps their results."""
        return {key: value for key, value in self.kept.items() if value.get("status") == DONE}

    def too_many_failed(self) -> bool:
        return self.failed > self.tolerated

    def step_state(self) -> dict:
        """The step's state as it stands: every item's record, in item order."""
        ordered = {str(index): self.kept[str(index)] for index in item_key_order(self.kept)}
        return {key: value for key, value in self.state.step_state.items() if key != "held"} | {
            "items": ordered
        }

    def next_index(self) -> int | None:
        with self.lock:
            if not self.todo or self.holds or self.stopped or self.too_many_failed():
                return None
            return self.todo.pop(0)

    def run(self) -> None:
        if not self.todo:
            return
        workers = min(self.spec.get("max_concurrency", 1), len(self.todo))
        slots = self.turn.config.map_item_slots

        def work(first: bool) -> None:
            # A worker runs while it holds one of the batch's item slots: the first waits
            # for one (the map goes on), the others only take one that is free.
            if slots is not None and not slots.acquire(blocking=first):
                return
            try:
                while (index := self.next_index()) is not None:
                    self.run_one(index)
            except BaseException as exc:  # a cancel or a lost claim: no further item starts
                with self.lock:
                    self.stopped = self.stopped or exc
            finally:
                if slots is not None:
                    slots.release()
                self.turn.thread_done()

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for worker in range(workers):
                pool.submit(work, worker == 0)
        if self.stopped is not None:
            raise self.stopped

    def run_one(self, index: int) -> None:
        record = self.kept.get(str(index), {})
        names = {item_name(self.spec): self.items[index], "index": index}
        outcome = self.run_item(
            self.spec,
            self.state,
            self.api_calls,
            self.item_turn,
            step_path=f"{self.step['id']}[{index}]",
            attempt=record.get("attempt", 0) if record.get("status") in (RETRYING, HELD) else 0,
            step_state={},
            names=names,
        )
        with self.lock:
            self.kept[str(index)] = item_record(outcome)
            self.failed += isinstance(outcome, Failed)
            if isinstance(outcome, RetryLater):
                self.later[index] = outcome.delay
            if isinstance(outcome, HeldBack):
                self.holds.append(outcome)
            follows = bool(self.todo) and not self.holds and not self.too_many_failed()
            # Kept with the next item's attempt row; with none to follow, at once.
            self.turn.keep_step_state(self.step_state(), at_once=not follows)

    def outcome(self) -> Outcome:
        step_id, state = self.step["id"], self.step_state()
        failures = self.failures()
        if len(failures) > self.tolerated:
            message = failure_message(failures, total=len(self.items), tolerated=self.tolerated)
            self.turn.step_note(step=step_id, note=message, failed=True)
            error = StepError(step_id, message, failures[0]["status"], items=failures)
            return Failed(error, kept={"items": self.done()})
        if self.holds:
            first = min(self.holds, key=lambda outcome: outcome.hold.delay)
            if self.later:
                delay = min(first.hold.delay, *self.later.values())
                return RetryLater(delay=delay, attempt=self.state.attempt, step_state=state)
            return HeldBack(first.hold, first.step_path, self.state.attempt, state)
        if self.later:
            delay = min(self.later.values())
            return RetryLater(delay=delay, attempt=self.state.attempt, step_state=state)
        results = [
            self.kept[str(index)].get("saved") if str(index) in self.kept else None
            for index in range(len(self.items))
        ]
        try:
            saved = render(self.step.get("save") or {}, {**self.context, "results": results})
        except ExpressionError as exc:
            self.turn.step_note(step=step_id, note=f"save: {exc}", failed=True)
            return Failed(StepError(step_id, f"save: {exc}"), kept={"items": self.done()})
        tolerated = f", {len(failures)} failed (tolerated)" if failures else ""
        done = len(self.items) - len(failures)
        self.turn.step_note(
            step=step_id, note=f"{len(self.items)} items: {done} succeeded{tolerated}"
        )
        return Succeeded(saved=saved, next_step=self.step.get("next"))


def item_record(outcome: Outcome) -> dict[str, Any]:
    """What an item came to, as its step's state keeps it."""
    if isinstance(outcome, Succeeded):
        return {"status": DONE, "saved": outcome.saved}
    if isinstance(outcome, Failed):
        return {
            "status": FAILED,
            "error": outcome.error.message,
            "http_status": outcome.error.status,
        }
    if isinstance(outcome, RetryLater):
        return {"status": RETRYING, "attempt": outcome.attempt, "due": time.time() + outcome.delay}
    if isinstance(outcome, HeldBack):
        return {"status": HELD, "attempt": outcome.attempt}
    return {"status": FAILED, "error": f"an item cannot {type(outcome).__name__}"}


def map_step_of(step_path: str) -> str:
    """The map step an item's path names (`reserve[12]` -> `reserve`), else the path: the
    metrics count a map's attempts at its step, not one series per item.

    >>> map_step_of("reserve[12]"), map_step_of("fulfil.ship")
    ('reserve', 'fulfil.ship')
    """
    head, bracket, tail = step_path.rpartition("[")
    return head if bracket and tail.endswith("]") and tail[:-1].isdigit() else step_path


def item_key_order(records: Mapping[str, Any]) -> list[int]:
    return sorted(int(key) for key in records)


def failure_message(failures: list[dict], *, total: int, tolerated: int) -> str:
    named = "; ".join(
        f"[{failure['index']}] {failure['error']}" for failure in failures[:NAMED_FAILURES]
    )
    more = f"; and {len(failures) - NAMED_FAILURES} more" if len(failures) > NAMED_FAILURES else ""
    return f"{len(failures)} of {total} items failed ({tolerated} tolerated): {named}{more}"


class ItemTurn:
    """The turn as an item sees it: the order's, but each attempt row is written together
    with the items finished since the last write, one item's write at a time."""

    def __init__(self, mapping: ItemsRun):
        self._mapping = mapping
        self._turn = mapping.turn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._turn, name)

    def attempt_started(self, *, step: str, attempt: int, request: CallRequest) -> int:
        with self._mapping.lock:
            return self._turn.attempt_started(step=step, attempt=attempt, request=request)
