"""A blueprint's flow as an SVG drawing, for the admin; no JavaScript, no network.

Steps stand in a column in list order (the order the flow falls through). An edge to
the step right below is drawn straight down; every other edge runs in its own lane at
the side: `next`, `choice` branches and `default` on the right, `on_failed` (dashed)
on the left. Parallel steps draw their branches side by side inside their box. The
flow ends in terminals below the steps, "end: completed" and "end: failed", where the
last step and the steps with `end` lead.

>>> svg = blueprint_svg({"steps": [{"id": "a", "call": "x"}, {"id": "b", "end": "completed"}]})
>>> svg.startswith("<svg") and ">a<" in svg and ">b<" in svg
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from blueprints.diagram_maps import inner_box, map_detail, stack_cards
from definitions import graph

BOX_WIDTH = 240
BOX_HEIGHT = 46
BRANCH_WIDTH = 150
BRANCH_GAP = 12
ROW_GAP = 44
LANE_GAP = 22
MARGIN = 24
LABEL_MAX = 28
DONE = "(completed)"
FAILED_END = "(failed)"
TERMINALS = {"completed": DONE, "failed": FAILED_END}
TERMINAL_WIDTH = 150
TERMINAL_HEIGHT = 34
DRAFT_MAX_STEPS = 500

STYLE = """
.sm-box { fill: #fff; stroke: #5b6b7a; stroke-width: 1.2; }
.sm-box.end-completed { fill: #e9f7ef; stroke: #2e7d4f; }
.sm-box.end-failed { fill: #fdecea; stroke: #b3261e; }
.sm-box.choice { fill: #fff8e1; }
.sm-box.parallel { fill: #eef3fb; }
.sm-box.message { fill: #f3e8ff; }
.sm-box.map { fill: #ecfdf5; }
.sm-box.taken { fill: #dbeafe; stroke: #1d4ed8; stroke-width: 2; }
.sm-box.current { stroke: #d97706; stroke-width: 3.5; }
.sm-id { font: bold 13px sans-serif; fill: #1f2937; }
.sm-kind { font: 11px sans-serif; fill: #4b5563; }
.sm-edge { fill: none; stroke: #4b5563; stroke-width: 1.3; }
.sm-edge.failed { stroke: #b3261e; stroke-dasharray: 5 4; }
.sm-edge.choice { stroke: #92400e; }
.sm-label { font: 11px sans-serif; fill: #374151; }
.sm-label.failed { fill: #b3261e; }
.sm-label.choice { fill: #92400e; }
.sm-here { font: bold 11px sans-serif; fill: #d97706; }
.sm-box.terminal.reached { stroke-width: 3.5; }
.sm-box.end-completed.reached { fill: #bbf7d0; }
.sm-box.end-failed.reached { fill: #fecaca; }
.sm-edge.ends { stroke: #b3261e; }
.sm-terminal { font: bold 12px sans-serif; fill: #1f2937; }
.sm-box.failed { fill: #fee2e2; stroke: #b91c1c; stroke-width: 3.5; }
.sm-here.failed { fill: #b91c1c; }
"""


@dataclass
class Node:
    id: str
    kind: str
    detail: str
    x: float
    y: float
    width: float
    height: float
    branches: list[dict]
    end: str = ""
    step: dict | None = None

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


@dataclass
class Edge:
    source: str
    target: str
    label: str
    style: str  # "next", "choice" or "failed"


def blueprint_svg(
    blueprint: dict,
    *,
    taken: Iterable[str] = (),
    current: str | None = None,
    failed: str | None = None,
    ended: str | None = None,
) -> str:
    """SVG markup of the blueprint's flow.

    `taken` holds step ids (or `parallel.branch` paths) an order ran; `current` is the
    step it stands at; `failed` the step (or branch path) whose failure the order took,
    drawn red, with an edge to "end: failed" when it has no `on_failed`; `ended` the
    terminal it reached ("completed" or "failed"). Malformed blueprints draw what they can.
    """
    steps = [
        step
        for step in (blueprint.get("steps") if isinstance(blueprint, dict) else None) or []
        if isinstance(step, dict) and isinstance(step.get("id"), str)
    ]
    if not steps:
        return _svg(200, 40, ['<text x="10" y="24" class="sm-kind">no steps</text>'])
    taken = set(taken)
    taken |= {path.split(".", 1)[0].split("[", 1)[0] for path in taken}  # branches, items
    edges = _edges(steps)
    failed_step = failed.split(".", 1)[0] if failed else None
    by_id = {step["id"]: step for step in steps}
    if failed_step in by_id and _target(by_id[failed_step], "on_failed") not in by_id:
        edges.append(Edge(failed_step, FAILED_END, "failed", "failed"))
    reached = {edge.target for edge in edges} | {TERMINALS.get(ended)}
    terminals = [terminal for terminal in _terminal_order(steps) if terminal in reached]
    left_lanes = sum(1 for edge in edges if edge.style == "failed" and not _straight(edge, steps))
    right_lanes = sum(1 for edge in edges if edge.style != "failed" and not _straight(edge, steps))
    widest = max([BOX_WIDTH] + [_box_width(step) for step in steps])
    column_x = MARGIN + left_lanes * LANE_GAP + 40
    nodes = _layout(steps, column_x, widest, terminals)
    width = column_x + widest + 40 + right_lanes * LANE_GAP + MARGIN + 120
    height = max(node.bottom for node in nodes.values()) + MARGIN

    parts = [_marker_defs()]
    parts += _draw_edges(edges, nodes, steps, column_x, widest)
    for node in nodes.values():
        parts.append(_draw_node(node, taken, current, failed, ended))
    return _svg(width, height, parts)


def draft_svg(steps_text: str) -> str:
    """The diagram of steps still being typed (their JSON text), for the editor to redraw.

    Raises ValueError saying in a few words why they cannot be drawn yet.
    """
    try:
        steps = json.loads(steps_text)
    except RecursionError:
        raise ValueError("the steps are nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON yet ({exc.msg} on line {exc.lineno})") from None
    if not isinstance(steps, list):
        raise ValueError("the steps must be a JSON list")
    if len(steps) > DRAFT_MAX_STEPS:
        raise ValueError(f"too many steps to redraw while typing (over {DRAFT_MAX_STEPS})")
    return blueprint_svg({"steps": steps})


def _straight(edge: Edge, steps: list[dict]) -> bool:
    """Whether the edge goes to the step right below its source (drawn down the middle)."""
    ids = [step["id"] for step in steps] + _terminal_order(steps)
    if edge.source not in ids or edge.target not in ids:
        return False
    return ids.index(edge.target) == ids.index(edge.source) + 1 and edge.style in ("next", "ends")


def _terminal_order(steps: list[dict]) -> list[str]:
    """The terminals top down: first the one the last step leads to, right below it."""
    end = _target(steps[-1], "end") if "choice" not in steps[-1] else None
    return [FAILED_END, DONE] if end == "failed" else [DONE, FAILED_END]


def _edges(steps: list[dict]) -> list[Edge]:
    """The flow graph's edges (definitions.graph) as arrows: to a step, or to a terminal
    for the order's end (a failure that ends the order is not drawn: every step has one)."""
    ids = {step["id"] for step in steps}
    arrows: list[Edge] = []
    for edge in graph.edges(steps):
        if edge.target is None:
            if edge.on != "failure" and edge.ends in TERMINALS:
                style = "ends" if edge.ends == graph.FAILED else "next"
                arrows.append(Edge(edge.source, TERMINALS[edge.ends], "", style))
        elif edge.target not in ids:
            continue
        elif edge.on == "branch":
            arrows.append(Edge(edge.source, edge.target, _short(edge.label), "choice"))
        elif edge.on == "default":
            arrows.append(Edge(edge.source, edge.target, "default", "choice"))
        elif edge.on == "failure":
            arrows.append(Edge(edge.source, edge.target, "on_failed", "failed"))
        else:
            named = _target(_step(steps, edge.source), "next") == edge.target
            arrows.append(Edge(edge.source, edge.target, "next" if named else "", "next"))
    return arrows


def _step(steps: list[dict], step_id: str) -> dict:
    return next(step for step in steps if step["id"] == step_id)


def _items(value) -> list[dict]:
    """The objects of a list: a draft being typed may hold anything where a list belongs."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _target(step: dict, key: str) -> str | None:
    """The step id under `key`, or None when a draft holds something else there."""
    value = step.get(key)
    return value if isinstance(value, str) else None


def _short(text: str) -> str:
    text = text.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


def _box_width(step: dict) -> float:
    branches = _items(step.get("parallel"))
    if not branches:
        return BOX_WIDTH
    return len(branches) * (BRANCH_WIDTH + BRANCH_GAP) + BRANCH_GAP


def _layout(steps: list[dict], x: float, widest: float, terminals: list[str]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    y = MARGIN
    for step in steps:
        branches = _items(step.get("parallel"))
        width = _box_width(step)
        height = BOX_HEIGHT + (BOX_HEIGHT + 10 if branches or "map" in step else 0)
        kind, detail = _describe(step)
        node = Node(
            id=step["id"],
            kind=kind,
            detail=detail,
            x=x + (widest - width) / 2,
            y=y,
            width=width,
            height=height,
            branches=branches,
            end=str(step.get("end") or ""),
            step=step,
        )
        nodes.setdefault(step["id"], node)
        y += height + ROW_GAP
    for terminal in terminals:
        end = "completed" if terminal == DONE else "failed"
        left = x + (widest - TERMINAL_WIDTH) / 2
        nodes[terminal] = Node(
            terminal, "terminal", f"end: {end}", left, y, TERMINAL_WIDTH, TERMINAL_HEIGHT, [], end
        )
        y += TERMINAL_HEIGHT + ROW_GAP / 2
    return nodes


def _describe(step: dict) -> tuple[str, str]:
    if "choice" in step:
        return "choice", f"{len(_items(step.get('choice')))} branch(es) + default"
    if "parallel" in step:
        return "parallel", "all branches, then join"
    if isinstance(step.get("map"), dict):
        return "map", map_detail(step)
    if "call" in step:
        detail = f"call {step['call']}"
        if step.get("wait_for_callback"):
            detail += " · waits for callback"
        if step.get("end"):
            detail += f" · then {step['end']}"
        return "call", detail
    if isinstance(step.get("message"), dict):
        return "message", f"waits for message {step['message'].get('name')}"
    detail = f"end: {step.get('end')}"
    return "end", detail


def _draw_node(
    node: Node, taken: set[str], current: str | None, failed: str | None, ended: str | None
) -> str:
    if node.kind == "terminal":
        return _draw_terminal(node, reached=node.end == ended)
    failed_here = failed is not None and node.id == failed.split(".", 1)[0]
    classes = ["sm-box", node.kind]
    if node.end and node.kind == "end":
        classes.append(f"end-{node.end}")
    if node.id in taken:
        classes.append("taken")
    if node.id == current:
        classes.append("current")
    if failed_here:
        classes.append("failed")
    title = node.id
    parts = [
        f'<g class="sm-step" data-step="{escape(node.id)}"><title>{escape(title)}</title>',
        stack_cards(node.x, node.y, node.width, node.height) if node.kind == "map" else "",
        f'<rect class="{escape(" ".join(classes))}" x="{node.x:.0f}" y="{node.y:.0f}" '
        f'width="{node.width:.0f}" height="{node.height:.0f}" rx="8"/>',
        f'<text class="sm-id" x="{node.x + 10:.0f}" y="{node.y + 19:.0f}">{escape(node.id)}</text>',
        f'<text class="sm-kind" x="{node.x + 10:.0f}" y="{node.y + 36:.0f}">'
        f"{escape(node.detail)}</text>",
    ]
    here = (["✕ failed"] if failed_here else []) + (
        ["● current step"] if node.id == current else []
    )
    if here:
        parts.append(
            f'<text class="sm-here{" failed" if failed_here else ""}" x="{node.right - 8:.0f}" '
            f'y="{node.y + 16:.0f}" text-anchor="end">{" · ".join(here)}</text>'
        )
    for index, branch in enumerate(node.branches):
        bx = node.x + BRANCH_GAP + index * (BRANCH_WIDTH + BRANCH_GAP)
        by = node.y + BOX_HEIGHT
        path = f"{node.id}.{branch.get('id')}"
        branch_classes = (
            "sm-box" + (" taken" if path in taken else "") + (" failed" if path == failed else "")
        )
        parts += [
            f'<g class="sm-branch" data-step="{escape(path)}"><title>{escape(path)}</title>',
            f'<rect class="{branch_classes}" x="{bx:.0f}" y="{by:.0f}" width="{BRANCH_WIDTH}" '
            f'height="{BOX_HEIGHT}" rx="6"/>',
            f'<text class="sm-id" x="{bx + 8:.0f}" y="{by + 19:.0f}">'
            f"{escape(str(branch.get('id')))}</text>",
            f'<text class="sm-kind" x="{bx + 8:.0f}" y="{by + 36:.0f}">'
            f"{escape(_short('call ' + str(branch.get('call'))))}</text></g>",
        ]
    if node.kind == "map":
        inner = (node.x + BRANCH_GAP, node.y + BOX_HEIGHT, node.width - 2 * BRANCH_GAP, BOX_HEIGHT)
        parts.append(inner_box(node.step, *inner, taken=node.id in taken))
    parts.append("</g>")
    return "".join(parts)


def _draw_terminal(node: Node, *, reached: bool) -> str:
    """A terminal: the order completes or fails here."""
    classes = f"sm-box terminal end-{node.end}" + (" reached" if reached else "")
    title = "the order completes" if node.end == "completed" else "the order fails"
    return (
        f'<g class="sm-step" data-step="{escape(node.id)}"><title>{title}</title>'
        f'<rect class="{classes}" x="{node.x:.0f}" y="{node.y:.0f}" width="{node.width:.0f}" '
        f'height="{node.height:.0f}" rx="{node.height / 2:.0f}"/>'
        f'<text class="sm-terminal" x="{node.x + node.width / 2:.0f}" y="{node.middle + 4:.0f}" '
        f'text-anchor="middle">{escape(node.detail)}</text></g>'
    )


def _draw_edges(
    edges: list[Edge], nodes: dict[str, Node], steps: list[dict], column_x: float, widest: float
) -> list[str]:
    parts = []
    lanes = _lanes(edges, nodes, steps)
    center = column_x + widest / 2
    for edge in edges:
        source, target = nodes.get(edge.source), nodes.get(edge.target)
        if source is None or target is None:
            continue
        css = "sm-edge" + ("" if edge.style == "next" else f" {edge.style}")
        label_css = "sm-label" + ("" if edge.style == "next" else f" {edge.style}")
        marker = "sm-arrow-failed" if edge.style in ("failed", "ends") else "sm-arrow"
        title = (
            f"<title>{escape(edge.source)} → {escape(edge.target)}: {escape(edge.label)}</title>"
        )
        if _straight(edge, steps):
            path = f"M{center:.0f},{source.bottom:.0f} L{center:.0f},{target.y - 2:.0f}"
            label_x, label_y, anchor = center + 6, (source.bottom + target.y) / 2 + 4, "start"
        elif edge.style == "failed":
            lane_x = column_x - 16 - lanes[id(edge)] * LANE_GAP
            start_x, end_x = source.x, target.x
            path = (
                f"M{start_x:.0f},{source.middle:.0f} L{lane_x:.0f},{source.middle:.0f} "
                f"L{lane_x:.0f},{target.middle:.0f} L{end_x - 2:.0f},{target.middle:.0f}"
            )
            label_x, label_y, anchor = lane_x - 4, (source.middle + target.middle) / 2, "end"
        else:
            lane = lanes[id(edge)]
            lane_x = column_x + widest + 16 + lane * LANE_GAP
            start_x, end_x = source.right, target.right
            sy = source.middle + (lane % 3 - 1) * 8
            ty = target.middle + (lane % 3 - 1) * 8
            path = (
                f"M{start_x:.0f},{sy:.0f} L{lane_x:.0f},{sy:.0f} "
                f"L{lane_x:.0f},{ty:.0f} L{end_x + 2:.0f},{ty:.0f}"
            )
            label_x, label_y, anchor = lane_x + 4, (sy + ty) / 2, "start"
        parts.append(
            f'<g class="sm-flow" data-edge="{escape(edge.source)}-&gt;{escape(edge.target)}">'
            f'{title}<path class="{css}" d="{path}" marker-end="url(#{marker})"/>'
        )
        if edge.label:
            parts.append(
                f'<text class="{label_css}" x="{label_x:.0f}" y="{label_y:.0f}" '
                f'text-anchor="{anchor}">{escape(edge.label)}</text>'
            )
        parts.append("</g>")
    return parts


def _lanes(edges: list[Edge], nodes: dict[str, Node], steps: list[dict]) -> dict[int, int]:
    """A lane per side edge, short spans nearest the boxes so long ones go round them."""
    lanes: dict[int, int] = {}
    for side in ("failed", "other"):
        on_side = [
            edge
            for edge in edges
            if (edge.style == "failed") == (side == "failed")
            and not _straight(edge, steps)
            and edge.source in nodes
            and edge.target in nodes
        ]
        on_side.sort(key=lambda edge: abs(nodes[edge.target].y - nodes[edge.source].y))
        for number, edge in enumerate(on_side, start=1):
            lanes[id(edge)] = number
    return lanes


def _marker_defs() -> str:
    return (
        "<defs>"
        '<marker id="sm-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#4b5563"/></marker>'
        '<marker id="sm-arrow-failed" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#b3261e"/></marker>'
        "</defs>"
    )


def _svg(width: float, height: float, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sm-diagram" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="flow diagram"><style>{STYLE}</style>' + "".join(parts) + "</svg>"
    )
