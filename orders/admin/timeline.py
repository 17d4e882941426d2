"""The order page's step log, read as steps: each run's log entries grouped into the
visits of its steps (every attempt, the callback, what the step saved), with the data
before and after each visit; a map step's attempts grouped by item (`reserve[2]`).

The data is replayed from the log: a run starts with no data (the first run, and a run
from the start) or with the data before the step whose failure the run before it took
(a run from the failed step), and each step adds what it saved, which the engine logs
as a `step` entry `{"saved": {...}}`. The current run's replay must end at the order's
saved data; where the log cannot tell (older entries cut off, or steps that ran before
the engine logged what they saved) the page says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from orders.models import Order, StepLog

ACTIONS = (StepLog.Kind.REPROCESS, StepLog.Kind.CANCEL)
# A visit's outcome when the order was cancelled while the step still waited.
CANCELLED = "cancelled"
STILL_GOING = (StepLog.Outcome.WAITING, StepLog.Outcome.IN_FLIGHT)
NOT_REPLAYED = (
    "The data before and after each step cannot be rebuilt from this order's log: some "
    "of its steps ran before the log recorded what each step saved."
)
CUT_OFF = (
    "The data before and after each step of this run is not known: older log entries are not shown."
)


@dataclass
class StepVisit:
    """One visit of a step in a run: its log entries, what it saved, the data around it."""

    step: str
    entries: list[StepLog] = field(default_factory=list)
    saved: dict = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    data_before: dict | None = None
    data_after: dict | None = None
    failed_here: bool = False
    cancelled: bool = False  # the order was cancelled while this step waited

    @property
    def outcome(self) -> str:
        # A map's own entry says how it ended (some items may fail, tolerated).
        own = [entry for entry in self.entries if not is_item(entry.step)]
        outcomes = [entry.outcome for entry in (own if self.item_groups and own else self.entries)]
        if StepLog.Outcome.FAILED in outcomes:
            return StepLog.Outcome.FAILED
        if self.cancelled:
            return CANCELLED
        return outcomes[-1] if outcomes else StepLog.Outcome.SUCCEEDED

    is_visit = True

    @property
    def outcome_label(self) -> str:
        # A row the engine did not write (an import, a hand edit) may hold any text.
        labels = {**dict(StepLog.Outcome.choices), CANCELLED: "Cancelled"}
        return labels.get(self.outcome, self.outcome or "unknown")

    @property
    def saved_keys(self) -> str:
        return ", ".join(self.saved)

    @property
    def attempts(self) -> int:
        return sum(1 for entry in self.entries if entry.kind == StepLog.Kind.ATTEMPT)

    @property
    def own_entries(self) -> list[StepLog]:
        return [entry for entry in self.entries if not is_item(entry.step)]

    @property
    def item_groups(self) -> list[dict]:
        """A map step's attempts by item, in item order: `{"step", "index", "entries",
        "outcome", "attempts"}` each."""
        groups: dict[str, list[StepLog]] = {}
        for entry in self.entries:
            if is_item(entry.step):
                groups.setdefault(entry.step, []).append(entry)
        return [
            {
                "step": step,
                "index": index,
                "entries": entries,
                "outcome": entries[-1].outcome,
                "attempts": len(entries),
            }
            for index, step, entries in sorted(
                (int(step.rsplit("[", 1)[1][:-1]), step, entries)
                for step, entries in groups.items()
            )
        ]


def is_item(step: str) -> bool:
    """Whether a log entry's step names one item of a map (`reserve[2]`)."""
    head, bracket, tail = step.rpartition("[")
    return bool(head) and bracket == "[" and tail.endswith("]") and tail[:-1].isdigit()


def step_of(step: str) -> str:
    """The blueprint's step a log entry belongs to: a branch's (`fulfil.ship`) or an
    item's (`reserve[2]`) step."""
    return (step.rsplit("[", 1)[0] if is_item(step) else step).split(".", 1)[0]


def timeline_runs(entries: list[StepLog], order: Order, *, cut_off: bool) -> list[dict]:
    """The entries (oldest first) by run: each run's `entries`, and its `items`, the step
    visits with the reprocess and cancel entries between them, each visit with the data
    before and after it. `cut_off`: older entries exist that are not in `entries`."""
    runs = [
        {"run": run, "entries": list(group), "current": run == order.run}
        for run, group in groupby(entries, key=lambda entry: entry.run)
    ]
    cancelled = order.status == Order.Status.CANCELLED
    for run in runs:
        run["items"] = step_visits(run["entries"])
        _mark_cancelled(run["items"], ended=run["current"] and cancelled)
    _replay(runs, cut_off=cut_off)
    current = next((run for run in reversed(runs) if run["current"]), None)
    replayed = (
        current is None
        or current["end"] is None
        or order.status == Order.Status.RUNNING  # its log may be a step ahead of this read
        or _same_data(current["end"], order.data, runs)
    )
    for run in runs:
        run["data_note"] = "" if run["end"] is not None else CUT_OFF
        if not replayed:
            run["data_note"] = NOT_REPLAYED
            for visit in visits_of(run):
                visit.data_before = visit.data_after = None
    if current is not None and order.failed_step:
        _mark_failed(current, order.failed_step.split(".", 1)[0])
    return runs


def _mark_cancelled(items: list, *, ended: bool) -> None:
    """A visit still waiting (or in flight) when a cancel came after it, or when its
    finished run ends with it, did not wait on: it was cancelled."""
    for index, item in enumerate(items):
        if not isinstance(item, StepVisit) or item.outcome not in STILL_GOING:
            continue
        after = items[index + 1] if index + 1 < len(items) else None
        if isinstance(after, StepLog) and after.kind == StepLog.Kind.CANCEL:
            item.cancelled = True
        elif after is None and ended:
            item.cancelled = True


def step_visits(entries: list[StepLog]) -> list[StepVisit | StepLog]:
    """A run's entries as step visits, with its reprocess and cancel entries as they are."""
    items: list[StepVisit | StepLog] = []
    visit: StepVisit | None = None
    previous: StepLog | None = None
    for entry in entries:
        if entry.kind in ACTIONS:
            items.append(entry)
            visit = previous = None
            continue
        step = step_of(entry.step)
        if visit is None or visit.step != step or _ends_visit(previous, entry):
            visit = StepVisit(step)
            items.append(visit)
        saved = saved_by(entry)
        if saved is None:
            visit.entries.append(entry)
        else:
            visit.saved.update(saved)
            visit.truncated += entry.response.get("truncated") or []
        previous = entry
    return items


def saved_by(entry: StepLog) -> dict | None:
    """What a step saved, when the entry is the engine's record of it."""
    response = entry.response
    if entry.kind == StepLog.Kind.STEP and isinstance(response, dict):
        saved = response.get("saved")
        return saved if isinstance(saved, dict) else None
    return None


def visits_of(run: dict) -> list[StepVisit]:
    return [item for item in run["items"] if isinstance(item, StepVisit)]


def _ends_visit(previous: StepLog, entry: StepLog) -> bool:
    """Whether `previous` closed its step's visit, so `entry` (of the same step) begins a
    new one: the step looped back to itself."""
    if saved_by(entry) is not None:
        return saved_by(previous) is not None
    if previous.kind == StepLog.Kind.STEP:
        return True
    return (
        previous.kind == StepLog.Kind.ATTEMPT
        and "." not in previous.step
        and not is_item(previous.step)
        and previous.outcome in (StepLog.Outcome.SUCCEEDED, StepLog.Outcome.FAILED)
    )


def _replay(runs: list[dict], *, cut_off: bool) -> None:
    """Each visit's data before and after, run after run; a run's `end` is its data at
    its last entry, None when its start is not known."""
    previous: dict | None = None
    for index, run in enumerate(runs):
        first = run["entries"][0]
        if first.kind == StepLog.Kind.REPROCESS:
            if (first.request or {}).get("from") == "start":
                data = {}
            else:
                data = _resumed(previous, first.step) if previous else None
        else:
            data = {} if run["run"] == 1 and not (index == 0 and cut_off) else None
        for visit in visits_of(run):
            visit.data_before = data
            if data is not None:
                data = {**data, **visit.saved}
            visit.data_after = data
        run["end"] = data
        previous = run


def _resumed(run: dict, step: str) -> dict | None:
    """The data a run from the failed step starts with: the data before the last failed
    visit of that step in the run before (as reprocess copies it), or, when it did not
    fail there (a cancelled order), that run's data at its end."""
    at_step = [visit for visit in visits_of(run) if visit.step == step]
    failed = [visit for visit in at_step if visit.outcome == StepLog.Outcome.FAILED]
    if failed or at_step:
        return (failed or at_step)[-1].data_before
    return run["end"]


def _same_data(replayed: dict, data: dict, runs: list[dict]) -> bool:
    """Whether the replay ends at the order's data; values the log cut short (too long to
    log) are not compared."""
    cut = {key for run in runs for visit in visits_of(run) for key in visit.truncated}
    return {key: value for key, value in replayed.items() if key not in cut} == {
        key: value for key, value in data.items() if key not in cut
    }


def _mark_failed(run: dict, step: str) -> None:
    """The visit whose failure the run took: the last failed visit of the failed step."""
    failed = [
        visit
        for visit in visits_of(run)
        if visit.step == step and visit.outcome == StepLog.Outcome.FAILED
    ]
    if failed:
        failed[-1].failed_here = True
