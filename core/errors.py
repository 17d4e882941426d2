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


class ServiceError(Exception):
    """A service's refusal, with the HTTP status the API answers it with.

    Services raise their own subclasses, and the API's exception handler (core.api) turns
    every one into its response, so a view calls a service without an `except`: a 400
    lists the `reasons`, each `"<place>: <reason>"`; any other status says the `detail`.
    Both are the message unless a subclass says otherwise.
    """

    status_code = 400

    @property
    def reasons(self) -> list[str]:
        return [str(self)]

    @property
    def detail(self) -> str:
        return str(self)


class ServiceErrors(ServiceError):
    """A refusal for several reasons at once: `errors`, each `"<place>: <reason>"`, are
    the 400's reasons, and the message joins them with `joiner`."""

    joiner = "; "

    def __init__(self, errors: Iterable[str]):
        self.errors = list(errors)
        super().__init__(self.joiner.join(self.errors))

    @property
    def reasons(self) -> list[str]:
        return self.errors
