"""What a log line is about: the order, step and attempt being worked on in this thread.

The engine binds them around a turn and an attempt; `LOG_FORMAT=json` writes them into
every line (`statemanager.logfilters.JsonLines`). A context variable, so each batch
thread (and each parallel branch's thread, which binds its own) has its own.

>>> with bound(order_id="shop-1"):
...     bind(step="pay", attempt=2)
...     fields()
{'order_id': 'shop-1', 'step': 'pay', 'attempt': 2}
>>> fields()
{}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any]] = ContextVar("log_fields", default={})  # noqa: B039


def fields() -> dict[str, Any]:
    return _fields.get()


def bind(**values: Any) -> None:
    """Add `values` to this thread's log fields (until the enclosing `bound` ends)."""
    _fields.set({**_fields.get(), **values})


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """The log fields with `values` inside the block, as they were after it."""
    token = _fields.set({**_fields.get(), **values})
    try:
        yield
    finally:
        _fields.reset(token)
