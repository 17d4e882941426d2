"""Walks over JSON values that may nest deeper than Python's recursion limit.

Responses come from outside and orders stored before the depth limit may hold anything,
so everything the engine does to a whole value (mask it, make it storable) walks it with
a stack of its own, never by recursion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

REPLACEMENT = "\ufffd"
# PostgreSQL refuses these in text and jsonb.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """A copy of a JSON value with `change` applied to every string and key in it.

    >>> map_strings({"a": ["x", 1], "b": {"c": "y"}}, str.upper)
    {'A': ['X', 1], 'B': {'C': 'Y'}}
    """
    if isinstance(value, str):
        return change(value)
    if not isinstance(value, Mapping | list | tuple):
        return value
    root: list = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, slot, item = stack.pop()
        if isinstance(item, str):
            parent[slot] = change(item)
        elif isinstance(item, Mapping):
            copy: dict = {}
            parent[slot] = copy
            for key, child in item.items():
                new_key = change(key) if isinstance(key, str) else key
                copy[new_key] = None
                stack.append((copy, new_key, child))
        elif isinstance(item, list | tuple):
            copy_list = [None] * len(item)
            parent[slot] = copy_list
            stack.extend((copy_list, index, child) for index, child in enumerate(item))
        else:
            parent[slot] = item
    return root[0]


def depth(value: Any, limit: int) -> int:
    """How deeply a JSON value nests (a scalar is 0), counted up to `limit + 1`.

    >>> depth({"a": [1, {"b": []}]}, 64), depth([[[[]]]], 2)
    (4, 3)
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def storable_text(text: str) -> str:
    """Text with what PostgreSQL cannot store (NUL, lone surrogates) replaced by U+FFFD.

    >>> storable_text("a\\x00b")
    'a\ufffdb'
    """
    return _UNSTORABLE.sub(REPLACEMENT, text)
