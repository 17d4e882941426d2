"""The resource guards of expressions: limits, the per-evaluation budget, and wrappers that
bound what Jinja's filters and Python's operators make before they make it.

Each guard raises Jinja's SecurityError; `language.evaluate` turns it into an
ExpressionError naming the expression.
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from jinja2.sandbox import SecurityError

MAX_RANGE = 10_000
MAX_SIZE = 100_000  # characters of a string, items of a list, made by one operation
MAX_MADE = 2_000_000  # characters and items made by all the operations of one evaluation
MAX_POWER_EXPONENT = 1_000
# Items, keys and characters of one value, nested ones included and each reference counted
# (`[x] * 1000` weighs a thousand x's): about what a 1 MiB webhook body can hold.
MAX_WEIGHT = 1_000_000
MAX_INT_BITS = 64 * 1024
MAX_JSON_INDENT = 16
MAX_SOURCE_LENGTH = 20_000
# Texts that `xml` and `form` read: kept below what one call's arguments may weigh
# (MAX_WEIGHT), so a long text is refused with its own reason; nested no deeper than the
# JSON response bodies the engine keeps (MAX_BODY_DEPTH in orders/engine/calls.py).
MAX_BODY_TEXT = 500_000
MAX_BODY_DEPTH = 64
TIME_BUDGET_SECONDS = 1.0


class _Budget(threading.local):
    """Per evaluation: when it must stop, and how many characters or items it made so far."""

    deadline: float = float("inf")
    made: int = 0

    def start(self) -> None:
        self.deadline = time.monotonic() + TIME_BUDGET_SECONDS
        self.made = 0

    def stop(self) -> None:
        self.deadline = float("inf")


budget = _Budget()


def check_time() -> None:
    if time.monotonic() > budget.deadline:
        raise SecurityError(f"took longer than {TIME_BUDGET_SECONDS:g}s of CPU time")


def check_size(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict | bytes):
        if len(value) > MAX_SIZE:
            raise SecurityError(f"result too large ({len(value)} > {MAX_SIZE} characters or items)")
        budget.made += len(value)
        if budget.made > MAX_MADE:
            raise SecurityError(f"made too much data (more than {MAX_MADE} characters or items)")
    return value


def weight(value: Any, limit: int = MAX_WEIGHT) -> int:
    """Items, keys and characters in `value`, nested ones included; the walk stops once
    it passes `limit` (so it costs at most `limit` steps, however big the value is).

    >>> weight({"a": [1, "xyz"]})  # dict 2, key 2, list 1, 1 1, "xyz" 4
    10
    """
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 1
        elif isinstance(item, dict):
            total += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset | range):
            total += 1 + (len(item) if isinstance(item, range) else 0)
            if not isinstance(item, range):
                stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1 + item.bit_length() // 64
        else:
            total += 1
    return total


def check_weight(value: Any, what: str = "value", limit: int = MAX_WEIGHT) -> Any:
    if weight(value, limit) > limit:
        raise SecurityError(f"{what} too large (more than {limit} items and characters)")
    return value


def check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"number too large (more than {MAX_INT_BITS} bits)")
    return value


def int_bits_after(operator_name: str, left: Any, right: Any) -> int:
    """A bound on the bits of an integer `left <op> right` before it is computed."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return 0
    if operator_name == "**":
        return left.bit_length() * max(right, 0)
    if operator_name == "*":
        return left.bit_length() + right.bit_length()
    return max(left.bit_length(), right.bit_length()) + 1


def repeat_size(left: Any, right: Any) -> int:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            return len(sequence) * max(count, 0)
    return 0


def capped_range(*args: int) -> range:
    """Jinja's `range`, capped at MAX_RANGE items."""
    check_time()
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range too large ({len(result)} > {MAX_RANGE} items)")
    return result


def numbers_in(text: str) -> list[int]:
    return [int(n) for n in "".join(ch if ch.isdigit() else " " for ch in text).split()]


def checked_output(value: Any) -> Any:
    """Each `{{ … }}` of a text template, checked before it is turned into text."""
    return check_weight(value, "text", MAX_SIZE)


def guarded_format(template: str, values: Any) -> str:
    """`"%s" % x` with widths and precisions limited, since `"%999999999d"` would fill memory."""
    if any(number > MAX_SIZE for number in numbers_in(template)):
        raise SecurityError(f"format width too large (more than {MAX_SIZE})")
    return operator.mod(template, values)


def guarded(func: Callable) -> Callable:
    """A function that checks the time budget before it runs and the size of what it made."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        check_weight((args, kwargs), "arguments")
        return check_int(check_size(func(*args, **kwargs)))

    return guarded


def checked_join(join: Callable) -> Callable:
    """Jinja's `join`, refused before it runs when the joined text would be too large."""

    @functools.wraps(join)
    def checked(eval_ctx, value: Iterable, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        if attribute is None:
            size = len(str(d)) * max(len(items) - 1, 0) + sum(len(str(item)) for item in items)
            if size > MAX_SIZE:
                raise SecurityError(f"join: result too large (more than {MAX_SIZE} characters)")
        return join(eval_ctx, items, d, attribute)

    return checked


def checked_replace(replace: Callable) -> Callable:
    """Jinja's `replace`, refused before it runs when the result would be too large."""

    @functools.wraps(replace)
    def checked(eval_ctx, s: str, old: str, new: str, count: int | None = None) -> str:
        text = str(s)
        growth = text.count(old) * max(len(new) - len(old), 0) if old else len(new) * len(text)
        if len(text) + growth > MAX_SIZE:
            raise SecurityError(f"replace: result too large (more than {MAX_SIZE} characters)")
        return replace(eval_ctx, s, old, new, count)

    return checked


def checked_tojson(tojson: Callable) -> Callable:
    """Jinja's `tojson`, with an indent small enough that the text stays near the value's size."""

    @functools.wraps(tojson)
    def checked(eval_ctx, value: Any, indent: int | None = None) -> str:
        if indent is not None and not 0 <= indent <= MAX_JSON_INDENT:
            raise SecurityError(f"tojson: indent must be between 0 and {MAX_JSON_INDENT}")
        return tojson(eval_ctx, value, indent)

    return checked


def widths_checked(func: Callable) -> Callable:
    """`center`, `indent`, `format`: refused when a width or count in them is too large."""

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        numbers = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, int)]
        if isinstance(args[0], str):
            numbers += numbers_in(args[0])
        if any(number > MAX_SIZE for number in numbers):
            raise SecurityError(f"{func.__name__}: width too large (more than {MAX_SIZE})")
        return func(*args, **kwargs)

    return checked
