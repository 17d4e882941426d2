"""What the validator knows of map steps (contract section 3, "Map"): the shape of the
inner call or child blueprint, and the names each of the step's templates sees.

A map's inner part is `{"items", "as"?, "max_concurrency"?, "tolerated_failures"?}` with
either `"call"` and its keys (`params`, `save`, `retry`, as on a call step) or
`"blueprint"` and `"input"`. Its item templates see the item under the `as` name (default
`item`) and its position as `index`; the map step's own `save` sees `results`.

>>> item_names({"items": "{{ input.lines }}", "as": "line"}, ("input", "data"))
('input', 'data', 'line', 'index')
>>> map_shape_errors({"items": "{{ input.lines }}"}, "steps[0] (id \\"reserve\\").map")
['steps[0] (id "reserve").map: needs "call" (an API call) or "blueprint" (a child blueprint)']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from core.errors import join_place
from expressions.names import ROOT_NAMES

CALL_KEYS = ("params", "save", "retry")
CHILD_KEYS = ("input",)
# The keys that say where the flow goes belong on the map step, not inside it.
FLOW_KEYS = ("id", "next", "on_failed", "end")


def item_name(spec: Mapping) -> str:
    """The name an item's templates see it under."""
    name = spec.get("as")
    return name if isinstance(name, str) and name else "item"


def item_names(spec: Mapping, names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` and the item's two: its `as` name and `index`."""
    return (*names, *dict.fromkeys((item_name(spec), "index")))


def inner_kind(spec: Mapping) -> str | None:
    """ "call" or "blueprint": what each item runs; None when the map names neither or both."""
    kinds = [kind for kind in ("call", "blueprint") if kind in spec]
    return kinds[0] if len(kinds) == 1 else None


def map_shape_errors(spec: object, place: str) -> list[str]:
    """What the JSON Schema cannot say well of a map's inner part: one kind of item work,
    the keys that go with it, and an `as` name that would hide one of the blueprint's."""
    if not isinstance(spec, dict):
        return []
    present = [kind for kind in ("call", "blueprint") if kind in spec]
    if not present:
        return [f'{place}: needs "call" (an API call) or "blueprint" (a child blueprint)']
    if len(present) == 2:
        return [f'{place}: a map runs "call" or "blueprint", not both']
    errors = []
    kind = present[0]
    others, other_kind = (CHILD_KEYS, "blueprint") if kind == "call" else (CALL_KEYS, "call")
    for key in others:
        if key in spec:
            errors.append(f'{join_place(place, [key])}: only with "{other_kind}"')
    if kind == "blueprint" and "input" not in spec:
        errors.append(f"{join_place(place, ['input'])}: required")
    name = spec.get("as")
    if isinstance(name, str) and name in ROOT_NAMES and name not in ("item",):
        errors.append(
            f'{join_place(place, ["as"])}: "{name}" would hide the name {name}; choose another'
        )
    return errors


def unknown_key_reason(key: str) -> str | None:
    if key in FLOW_KEYS:
        return "not allowed inside a map; put it on the map step"
    if key == "wait_for_callback":
        return "not available inside a map: an item cannot wait for a callback"
    return None


def map_expression_places(
    steps: list, *, always: tuple[str, ...], response: tuple[str, ...]
) -> Iterator[tuple[list, object, tuple[str, ...]]]:
    """(path, value, names it may use) of every template of the blueprint's map steps:
    `items` sees what every step sees; the inner `params`, `save` (with `response`) and a
    child's `input` see the item too; the map step's own `save` sees `results`."""
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("map"), dict):
            continue
        spec, path = step["map"], ["steps", index, "map"]
        if isinstance(spec.get("items"), str):
            yield [*path, "items"], spec["items"], always
        for key, names in (("params", always), ("save", response), ("input", always)):
            if key in spec:
                yield [*path, key], spec[key], item_names(spec, names)
        if "save" in step:
            yield ["steps", index, "save"], step["save"], (*always, "results")
