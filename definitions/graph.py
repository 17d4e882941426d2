"""The flow graph of a blueprint: its step kinds and where the flow goes after each step.

The rules of contract section 3 in one place, read by the validator (targets that name no
step, steps no path reaches), the engine and the dry run (where an order goes next) and
the diagram (its arrows). A new step kind is added to `KINDS` here and given a runner in
orders/engine/flow.py.

Every step has its edges: `success` (to `next`, else the following step), `failure` (to
`on_failed`), a choice's `branch` and `default`, and an end step's `end`. An edge whose
`target` is None ends the order with the status `ends`.

>>> steps = [
...     {"id": "charge", "call": "payments.charge", "on_failed": "reject"},
...     {"id": "reject", "end": "failed"},
... ]
>>> for edge in edges(steps):
...     print(edge.source, edge.on, edge.target or f"({edge.ends})")
charge success reject
charge failure reject
reject end (failed)
>>> after_success(steps[0], ["charge", "reject"])
Edge(source='charge', on='success', target='reject', ends=None, label='')
>>> unreachable_steps([{"id": "a", "call": "x", "end": "completed"}, {"id": "b", "end": "failed"}])
[1]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

COMPLETED, FAILED = "completed", "failed"


@dataclass(frozen=True)
class Kind:
    """How a kind of step leads on: `continues` when a success goes to `next` or the
    following step (and `end` on the step may finish the order instead), `fails_over`
    when a failure may take `on_failed`, `branches` for a choice."""

    name: str
    continues: bool = False
    fails_over: bool = False
    branches: bool = False


# The step kinds, each named by the key that makes a step of that kind. A step with only
# `end` is an end step; `end` beside `call` or `parallel` finishes the order after it.
KINDS: dict[str, Kind] = {
    "call": Kind("call", continues=True, fails_over=True),
    "choice": Kind("choice", branches=True),
    "parallel": Kind("parallel", continues=True, fails_over=True),
    "end": Kind("end"),
    "message": Kind("message", continues=True, fails_over=True),
    "map": Kind("map", continues=True, fails_over=True),
}
TARGET_KEYS = ("next", "on_failed", "default")


@dataclass(frozen=True)
class Edge:
    """Where the flow goes from `source` `on` an outcome: a step, or the order's end."""

    source: str
    on: str  # "success" | "failure" | "branch" | "default" | "end"
    target: str | None
    ends: str | None = None  # the status the order ends with when `target` is None
    label: str = ""  # a branch's `when`


def step_kind(step: Mapping) -> str | None:
    """The kind a step's keys name; None for no kind or more than one.

    >>> step_kind({"id": "a", "call": "x", "end": "completed"})
    'call'
    >>> step_kind({"id": "e", "end": "failed"})
    'end'
    >>> step_kind({"id": "b", "call": "x", "choice": []}) is None
    True
    """
    kinds = [name for name in KINDS if name != "end" and name in step]
    if len(kinds) == 1:
        return kinds[0]
    if not kinds and "end" in step:
        return "end"
    return None


def declared_targets(step: Mapping, path: list) -> list[tuple[list, object]]:
    """(place, step id) of every step that a step names as where the flow may go."""
    targets = [([*path, key], step[key]) for key in TARGET_KEYS if key in step]
    if isinstance(step.get("choice"), list):
        targets += [
            ([*path, "choice", index, "next"], branch.get("next"))
            for index, branch in enumerate(step["choice"])
            if isinstance(branch, dict)
        ]
    return targets


def step_edges(step: Mapping, following: str | None) -> list[Edge]:
    """The edges out of one step; `following` is the id of the step after it in the list.

    Tolerant of drafts being typed: a target that is not a string is left out."""
    kind = KINDS.get(step_kind(step) or "")
    source = step.get("id")
    if kind is None:
        return []
    if kind.name == "end":
        return [Edge(source, "end", None, _text(step.get("end")))]
    found: list[Edge] = []
    if kind.branches:
        choice = step.get("choice")
        for branch in choice if isinstance(choice, list) else []:
            if isinstance(branch, dict) and _text(branch.get("next")):
                label = str(branch.get("when", ""))
                found.append(Edge(source, "branch", branch["next"], label=label))
        if _text(step.get("default")):
            found.append(Edge(source, "default", step["default"]))
    if kind.continues:
        found.append(_success(step, source, following))
    if kind.fails_over and _text(step.get("on_failed")):
        found.append(Edge(source, "failure", step["on_failed"]))
    else:
        found.append(Edge(source, "failure", None, FAILED))
    return found


def edges(steps: Sequence) -> Iterator[Edge]:
    """Every edge of a blueprint's steps, step by step."""
    for index, step in enumerate(steps):
        if isinstance(step, Mapping):
            following = steps[index + 1] if index + 1 < len(steps) else None
            following_id = following.get("id") if isinstance(following, Mapping) else None
            yield from step_edges(step, _text(following_id))


def after_success(step: Mapping, step_order: Sequence[str], chosen: str | None = None) -> Edge:
    """Where a step that succeeded leads: `chosen` (a choice's branch, a step's `next`),
    else its `end`, else its `next`, else the following step, else the end (completed)."""
    if chosen and step.get("end") not in (COMPLETED, FAILED):
        return Edge(step["id"], "success", chosen)
    return _success(step, step["id"], following_step(step_order, step["id"]))


def after_failure(step: Mapping) -> Edge:
    """Where a step that failed after its retries leads: `on_failed`, else the end (failed)."""
    kind = KINDS.get(step_kind(step) or "")
    if kind is not None and kind.fails_over and step.get("on_failed"):
        return Edge(step["id"], "failure", step["on_failed"])
    return Edge(step["id"], "failure", None, FAILED)


def following_step(step_order: Sequence[str], step_id: str) -> str | None:
    index = list(step_order).index(step_id)
    return step_order[index + 1] if index + 1 < len(step_order) else None


def unreachable_steps(steps: list) -> list[int]:
    """The indexes of the steps no path from the first step reaches; none when a step is
    of no known kind (where it leads is unknown)."""
    if not steps or not all(isinstance(step, dict) and step_kind(step) for step in steps):
        return []
    index_of: dict = {}
    for index, step in enumerate(steps):
        index_of.setdefault(step.get("id"), index)
    out_of: dict = {}
    for edge in edges(steps):
        out_of.setdefault(edge.source, []).append(edge.target)
    reached, todo = {0}, [0]
    while todo:
        for target in out_of.get(steps[todo.pop()].get("id"), []):
            index = index_of.get(target) if isinstance(target, str) else None
            if index is not None and index not in reached:
                reached.add(index)
                todo.append(index)
    return [index for index in range(len(steps)) if index not in reached]


def steps_left_out(before: object, after: object) -> list[str]:
    """The ids of the steps (not parallel branches) of `before` that `after` no longer has:
    removed or renamed. Orders stop, and resume when reprocessed, at such steps.

    >>> steps_left_out([{"id": "a"}, {"id": "b"}, {"id": "c"}], [{"id": "a"}, {"id": "B"}])
    ['b', 'c']
    """
    return [step_id for step_id in _step_ids(before) if step_id not in _step_ids(after)]


def _success(step: Mapping, source: str, following: str | None) -> Edge:
    end = step.get("end")
    if end in (COMPLETED, FAILED):
        return Edge(source, "success", None, end)
    target = _text(step.get("next")) or following
    return Edge(source, "success", target, None if target else COMPLETED)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _step_ids(steps: object) -> list[str]:
    if not isinstance(steps, list):
        return []
    return [s["id"] for s in steps if isinstance(s, dict) and isinstance(s.get("id"), str)]
