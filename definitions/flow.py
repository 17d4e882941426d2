"""Where a blueprint's flow may go from each step, as the engine's runner walks it
(orders/engine/runner.py): the validator refuses a step no path reaches.

>>> unreachable_steps([{"id": "a", "call": "x", "end": "completed"}, {"id": "b", "end": "failed"}])
[1]
"""

from __future__ import annotations


def step_kind(step: dict) -> str | None:
    """The kind of a step from its keys (`end` is also allowed on call and parallel steps)."""
    kinds = [kind for kind in ("call", "choice", "parallel") if kind in step]
    if len(kinds) == 1:
        return kinds[0]
    if not kinds and "end" in step:
        return "end"
    return None


def flow_targets(step: dict, path: list) -> list[tuple[list, object]]:
    """(path, step id) of every step a step names as where the flow may go."""
    targets = [([*path, key], step[key]) for key in ("next", "on_failed", "default") if key in step]
    if isinstance(step.get("choice"), list):
        targets += [
            ([*path, "choice", index, "next"], branch.get("next"))
            for index, branch in enumerate(step["choice"])
            if isinstance(branch, dict)
        ]
    return targets


def unreachable_steps(steps: list) -> list[int]:
    """The indexes of the steps no path from the first step reaches; none when a step is
    of no known kind (where it leads is unknown)."""
    if not steps or not all(isinstance(step, dict) and step_kind(step) for step in steps):
        return []
    index_of: dict = {}
    for index, step in enumerate(steps):
        index_of.setdefault(step.get("id"), index)
    reached, todo = {0}, [0]
    while todo:
        for target in successors(steps, todo.pop()):
            index = index_of.get(target) if isinstance(target, str) else None
            if index is not None and index not in reached:
                reached.add(index)
                todo.append(index)
    return [index for index in range(len(steps)) if index not in reached]


def successors(steps: list, index: int) -> list:
    """Where the flow may go after a step: a choice's branches and default; after a call or
    a parallel step its `on_failed`, and, unless `end` finishes the order, its `next` or
    else the following step in the list (none after the last: the order completes)."""
    step = steps[index]
    kind = step_kind(step)
    if kind == "end":
        return []
    if kind == "choice":
        return [target for _, target in flow_targets(step, [])]
    following = steps[index + 1].get("id") if index + 1 < len(steps) else None
    successors = [step.get("on_failed")]
    if "end" not in step:
        successors.append(step.get("next") or following)
    return successors


def steps_left_out(before: object, after: object) -> list[str]:
    """The ids of the steps (not parallel branches) of `before` that `after` no longer has:
    removed or renamed. Orders stop, and resume when reprocessed, at such steps.

    >>> steps_left_out([{"id": "a"}, {"id": "b"}, {"id": "c"}], [{"id": "a"}, {"id": "B"}])
    ['b', 'c']
    """
    return [step_id for step_id in _step_ids(before) if step_id not in _step_ids(after)]


def _step_ids(steps: object) -> list[str]:
    if not isinstance(steps, list):
        return []
    return [s["id"] for s in steps if isinstance(s, dict) and isinstance(s.get("id"), str)]
