"""Reading versions of a definition: its contract JSON in the order a reader expects the
keys, and what changed between two versions, line by line, side by side.

>>> rows = side_by_side("a\\nb\\nc", "a\\nB\\nc\\nd")
>>> [(row.kind, row.old, row.new) for row in rows]
[('same', 'a', 'a'), ('changed', 'b', 'B'), ('same', 'c', 'c'), ('added', '', 'd')]
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

# The contract's keys in the order a reader expects them, for stable, readable exports
# and diffs (PostgreSQL's jsonb keeps keys in an order of its own).
CONTRACT_KEY_ORDER = [
    "slug", "name", "description", "method", "url", "connection", "headers", "query", "body",
    "body_type", "timeout_seconds", "success_when", "error_message", "input_schema", "notify_url",
    "concurrency_key", "steps",
    "id", "call", "choice", "when", "parallel", "params", "wait_for_callback",
    "retry", "save", "default", "on_failed", "next", "end", "error",
]  # fmt: skip
# Unchanged lines kept around each change; the rest fold into one row.
CONTEXT_LINES = 3
FOLD_AT_LEAST = 3  # fewer unchanged lines are shown: a fold would take as much room


def contract_order(definition: dict) -> dict:
    """The definition with its own keys (and its steps' keys) in CONTRACT_KEY_ORDER.

    >>> list(contract_order({"steps": [], "name": "N", "slug": "s"}))
    ['slug', 'name', 'steps']
    """

    def ordered(mapping: dict) -> dict:
        rank = {key: index for index, key in enumerate(CONTRACT_KEY_ORDER)}
        return dict(sorted(mapping.items(), key=lambda item: rank.get(item[0], len(rank))))

    def step(value):
        if not isinstance(value, dict):
            return value
        value = ordered(value)
        for key in ("parallel", "choice"):
            if isinstance(value.get(key), list):
                value[key] = [
                    ordered(item) if isinstance(item, dict) else item for item in value[key]
                ]
        return value

    definition = ordered(definition)
    if isinstance(definition.get("steps"), list):
        definition["steps"] = [step(value) for value in definition["steps"]]
    return definition


def definition_text(definition) -> str:
    """A stored definition as the indented JSON a person reads and compares."""
    if isinstance(definition, dict):
        definition = contract_order(definition)
    return json.dumps(definition, indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class DiffRow:
    """One line of a side-by-side diff: `same`, `changed`, `added`, `removed`, or `folded`
    (unchanged lines left out, `count` of them). Line numbers are 1-based, 0 for none."""

    kind: str
    old: str = ""
    new: str = ""
    old_number: int = 0
    new_number: int = 0
    count: int = 0


def side_by_side(old_text: str, new_text: str, *, context: int = CONTEXT_LINES) -> list[DiffRow]:
    """The lines of two texts paired up, changes with `context` unchanged lines around them."""
    old, new = old_text.splitlines(), new_text.splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += _unchanged(old, i1, i2, j1, context, first=not rows, last=i2 == len(old))
            continue
        for offset in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + offset, j1 + offset
            has_old, has_new = i < i2, j < j2
            kind = "changed" if has_old and has_new else "removed" if has_old else "added"
            rows.append(
                DiffRow(
                    kind,
                    old=old[i] if has_old else "",
                    new=new[j] if has_new else "",
                    old_number=i + 1 if has_old else 0,
                    new_number=j + 1 if has_new else 0,
                )
            )
    return rows


def _unchanged(
    old: list[str], start: int, end: int, new_start: int, context: int, *, first: bool, last: bool
) -> list[DiffRow]:
    """Equal lines: all of them when few, else `context` lines next to each change."""
    keep_before = 0 if first else context
    keep_after = 0 if last else context
    numbers = list(range(start, end))
    if len(numbers) - keep_before - keep_after >= FOLD_AT_LEAST:
        shown = numbers[:keep_before] + [None] + numbers[len(numbers) - keep_after :]
    else:
        shown = numbers
    rows = []
    for index in shown:
        if index is None:
            rows.append(DiffRow("folded", count=len(numbers) - keep_before - keep_after))
        else:
            new_index = new_start + index - start
            rows.append(DiffRow("same", old[index], old[index], index + 1, new_index + 1))
    return rows
