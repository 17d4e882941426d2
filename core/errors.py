"""Errors as values with a place and a reason: `steps[3].on_failed: no step "refnd"`."""

from __future__ import annotations

from collections.abc import Iterable


def join_place(prefix: str, path: Iterable) -> str:
    """`steps`, 3, `call` -> `steps[3].call`, below `prefix` (which may be empty)."""
    place = prefix
    for part in path:
        if isinstance(part, int):
            place += f"[{part}]"
        else:
            place = f"{place}.{part}" if place else str(part)
    return place
