"""Dotted paths into an order's JSON (`address.zip`, `items.0.sku`: a digit indexes a list),
as an edit names them and a reprocess from a named step replays them."""

from __future__ import annotations

import copy
from typing import Any

MISSING: Any = object()


def set_path(node: Any, parts: list[str], value: Any) -> str | None:
    """Set the value at `parts` in place, making the objects on the way; a problem, or None."""
    for index, part in enumerate(parts[:-1]):
        below = child(node, part)
        if below is MISSING:
            if not isinstance(node, dict):
                return f"{'.'.join(parts[: index + 1])} is not there"
            node[part] = below = {}
        node = below
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    else:
        return "its parent is not an object (or a list holding that index)"
    return None


def unset_path(node: Any, parts: list[str]) -> str | None:
    """Remove the value at `parts` in place; a problem (nothing there), or None."""
    for part in parts[:-1]:
        node = child(node, part)
        if node is MISSING:
            return "nothing is there"
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]
    else:
        return "nothing is there"
    return None


def child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, MISSING)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return MISSING


def data_edit(
    data: Any, set_paths: dict | None, unset_paths: list | None, *, replaced: bool
) -> dict | None:
    """What an edit does to an order's data, as its log entry keeps it to be replayed:
    `{"whole": {...}}`, or `{"set": {path: value}, "unset": [path]}` relative to the data;
    None when it leaves the data alone."""
    if replaced:
        return {"whole": data}
    sets = {p.split(".", 1)[1]: v for p, v in (set_paths or {}).items() if p.startswith("data.")}
    unsets = [p.split(".", 1)[1] for p in (unset_paths or ()) if p.startswith("data.")]
    return {"set": sets, "unset": unsets} if sets or unsets else None


def replay_data_edit(data: dict, edit: dict) -> dict:
    """`data` with an edit applied again (a path no longer there is let be)."""
    if "whole" in edit:
        return copy.deepcopy(edit["whole"])
    data = copy.deepcopy(data)
    for path, value in edit.get("set", {}).items():
        set_path(data, path.split("."), copy.deepcopy(value))
    for path in edit.get("unset", []):
        unset_path(data, path.split("."))
    return data
