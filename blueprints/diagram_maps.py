"""A map step in the blueprint's diagram: a stacked box (one card per item, drawn as
three) with its inner call or child blueprint inside, as `blueprints.diagram` places it.

>>> map_detail({"map": {"items": "{{ input.lines }}", "max_concurrency": 4}})
'for each of input.lines · 4 at once'
>>> inner_label({"map": {"call": "stock.reserve"}})
'call stock.reserve'
"""

from __future__ import annotations

from html import escape

STACK_OFFSET = 4  # how far each card behind the map's box shows


def map_detail(step: dict) -> str:
    spec = step["map"]
    items = str(spec.get("items", "")).removeprefix("{{").removesuffix("}}").strip()
    at_once = spec.get("max_concurrency", 1)
    detail = f"for each of {items[:24]}" + (f" · {at_once} at once" if at_once != 1 else "")
    if spec.get("tolerated_failures"):
        detail += f" · {spec['tolerated_failures']} may fail"
    return detail


def inner_label(step: dict) -> str:
    spec = step["map"]
    if "blueprint" in spec:
        return f"blueprint {spec['blueprint']}"
    return f"call {spec.get('call')}"


def stack_cards(x: float, y: float, width: float, height: float) -> str:
    """The cards behind the map's box, drawn before it."""
    cards = []
    for depth in (2, 1):
        shift = depth * STACK_OFFSET
        cards.append(
            f'<rect class="sm-box map sm-stack" x="{x + shift:.0f}" y="{y + shift:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" rx="8"/>'
        )
    return "".join(cards)


def inner_box(step: dict, x: float, y: float, width: float, height: float, *, taken: bool) -> str:
    """The inner call (or child blueprint) each item runs, inside the map's box."""
    path = f"{step['id']}[]"
    classes = "sm-box" + (" taken" if taken else "")
    return (
        f'<g class="sm-map-inner" data-step="{escape(path)}"><title>each item</title>'
        f'<rect class="{classes}" x="{x:.0f}" y="{y:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" rx="6"/>'
        f'<text class="sm-kind" x="{x + 8:.0f}" y="{y + height / 2 + 4:.0f}">'
        f"{escape(inner_label(step)[:34])} · item, index</text></g>"
    )
