"""The registry of functions for expressions: `@function` adds one, and the expression
environment listens so that a function registered at any time is usable at once.

Every registered function is usable as a filter (`{{ input.items | pluck("sku") }}`) and,
for the ones that need no value, as a call (`{{ now() }}`, `{{ uuid() }}`). Its docstring
is what the admin's list of functions shows.
"""

from __future__ import annotations

from collections.abc import Callable

FUNCTIONS: dict[str, Callable] = {}
_listeners: list[Callable[[str, Callable], None]] = []


def function(name: str | None = None) -> Callable[[Callable], Callable]:
    """Register a Python function for expressions, under `name` or its own name.

    >>> @function("shout")
    ... def shout(value):
    ...     '''The value in capitals.'''
    ...     return str(value).upper()
    >>> FUNCTIONS["shout"] is shout
    True
    >>> del FUNCTIONS["shout"]
    """

    def register(func: Callable) -> Callable:
        registered = name or func.__name__
        FUNCTIONS[registered] = func
        for listener in _listeners:
            listener(registered, func)
        return func

    return register


def on_register(listener: Callable[[str, Callable], None]) -> None:
    """Call `listener(name, func)` for every function, those registered so far included."""
    _listeners.append(listener)
    for name, func in FUNCTIONS.items():
        listener(name, func)
