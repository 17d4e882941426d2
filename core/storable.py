"""What every door checks in JSON before it is stored: text PostgreSQL can hold, and nesting
that the parser, the engine and the pages that show it can take.

PostgreSQL refuses a NUL character and a lone surrogate (an unpaired `\\ud800` escape,
which JSON can carry) in text and in jsonb, so such input is a 400 at the door, not a
database error later; SQLite would store it, and is refused the same, so both behave alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.conf import conf

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# A door lists at most this many problems of one value: enough to fix, not a flood.
MAX_PROBLEMS = 20


def text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store this text, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    if _SURROGATE.search(text):
        return "contains a lone surrogate (\\ud800-\\udfff)"
    return None


def has_control_character(text: str) -> bool:
    return _CONTROL.search(text) is not None


def escape_lone_surrogates(json_text: str) -> str:
    """JSON text with each lone surrogate written as its `\\ud800` escape, the same value:
    a page or a file cannot be encoded as UTF-8 with the character itself."""
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", json_text)


def shown(text: str) -> str:
    """Text quoted for an error message, any character that could not be shown escaped."""
    return json.dumps(text)


def unstorable(value: Any, *, max_depth: int | None = None) -> list[tuple[list, str]]:
    """Every string or key of a JSON value that cannot be stored, as (path, reason) with the
    path below the value (`["steps", 2, "id"]`), in document order and at most
    MAX_PROBLEMS of them; or, for a value nested deeper than `max_depth` (default
    STATE_MANAGER_MAX_JSON_DEPTH), that alone at `[]`.

    Iterative, so a value nested deeper than Python's recursion limit is judged too.
    """
    if max_depth is None:
        max_depth = conf().max_json_depth
    problems: list[tuple[list, str]] = []
    # (value, its level of nesting, its path as a (parent path, key) chain, a key's problem)
    stack: list[tuple[Any, int, tuple | None, str | None]] = [(value, 1, None, None)]
    while stack and len(problems) < MAX_PROBLEMS:
        item, level, path, key_problem = stack.pop()
        if key_problem or isinstance(item, str):
            problem = key_problem or text_problem(item)
            if problem:
                problems.append((_path_list(path), problem))
            continue
        if not isinstance(item, dict | list):
            continue
        if level > max_depth:
            return [([], f"nested deeper than {max_depth} levels")]
        if isinstance(item, dict):
            children = [_entry(key, child, level, path) for key, child in item.items()]
        else:
            children = [(child, level + 1, (path, i), None) for i, child in enumerate(item)]
        stack.extend(reversed(children))
    return problems


def unstorable_fields(body: dict, *, max_depth: int | None = None) -> list[tuple[list, str]]:
    """unstorable() of each field of an object (a request body, a definition): the depth is
    counted from each field's value, and each path starts at its field."""
    problems = []
    for key, value in body.items():
        problem = text_problem(key) if isinstance(key, str) else None
        if problem:
            problems.append(([], f"the key {shown(key)} {problem}"))
            continue
        problems += [([key, *path], why) for path, why in unstorable(value, max_depth=max_depth)]
    return problems[:MAX_PROBLEMS]


def _entry(key, child, level: int, path: tuple | None) -> tuple:
    """The stack entry of one key of an object: its value, or the key's own problem."""
    problem = text_problem(key) if isinstance(key, str) else None
    if problem:
        return (None, level, path, f"the key {shown(key)} {problem}")
    return (child, level + 1, (path, key), None)


def _path_list(path: tuple | None) -> list:
    parts = []
    while path is not None:
        path, key = path
        parts.append(key)
    return parts[::-1]
