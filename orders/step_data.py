"""The data an order's latest run had when it reached a step, read back from its log.

A run's data begins as its `reprocess` entry says (the first run's: empty), changes by
what each succeeded step saved (`data.update(saved)`, as the engine does) and by edits,
and is what it was at a step when the first entry of that step (an attempt, a note, a
callback) was written; an edit made after that (support's correction before the
reprocess) is applied on top. The entries keep those values exactly in `StepLog.saved`
(masked, as the order's data itself is).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orders.dotted_paths import replay_data_edit
from orders.models import StepLog

# Entries that mean the run was at a step.
AT_STEP = (StepLog.Kind.ATTEMPT, StepLog.Kind.STEP, StepLog.Kind.CALLBACK)


class _Unknowable(Exception):
    pass


# An order whose log cannot say its data at the step: an entry written before the log kept
# `saved` exactly, and cut to the body limit.
UNKNOWN: Any = object()


def data_at_steps(runs: Iterable[tuple[int, int]], step: str) -> dict[int, dict | None]:
    """For each (order pk, latest run), its data when that run first reached `step`:
    None when the run never reached it, UNKNOWN (compare with `is`) when the log cannot
    tell. One query for all of them, in log order."""
    runs = dict(runs)
    found: dict[int, dict | None] = dict.fromkeys(runs)
    data: dict[int, dict] = {pk: {} for pk in runs}
    done: set[int] = set()
    entries = (
        StepLog.objects.filter(order_id__in=runs)
        .order_by("order_id", "id")
        .values_list("order_id", "run", "step", "kind", "outcome", "saved", "response")
        .iterator(chunk_size=2000)
    )
    for pk, run, at, kind, outcome, saved, response in entries:
        if run != runs[pk]:
            continue
        if kind == StepLog.Kind.EDIT:
            if saved is not None and found[pk] is not UNKNOWN:
                if pk in done:  # an edit made since the run was there: kept on top
                    found[pk] = replay_data_edit(found[pk], saved)
                else:
                    data[pk] = replay_data_edit(data[pk], saved)
            continue
        if pk in done:
            continue
        try:
            if kind == StepLog.Kind.REPROCESS:
                if saved is None:
                    raise _Unknowable
                data[pk] = dict(saved)
            elif kind in AT_STEP and _is_at(at, step):
                found[pk] = data[pk]
                done.add(pk)
            elif kind == StepLog.Kind.STEP and outcome == StepLog.Outcome.SUCCEEDED:
                data[pk].update(_saved(saved, response))
        except _Unknowable:
            found[pk] = UNKNOWN
            done.add(pk)
    return found


def _is_at(entry_step: str, step: str) -> bool:
    """An entry of `step` itself, of one of its parallel branches (`fulfil.ship`) or of
    one of its map's items (`reserve[2]`)."""
    return entry_step == step or entry_step.startswith((step + ".", step + "["))


def _saved(saved: dict | None, response: dict | None) -> dict:
    if saved is not None:
        return saved
    logged = (response or {}).get("saved")
    if logged is None:
        return {}  # a note (a choice, an end): nothing saved
    if (response or {}).get("truncated"):
        raise _Unknowable
    return logged
