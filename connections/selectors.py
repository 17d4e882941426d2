"""Reads of connections, for the runtime that applies them when a call is sent."""

from __future__ import annotations

from connections.models import Connection


def connection_named(name: str) -> dict | None:
    """The contract JSON of the connection `name` as it is now, or None when there is none.

    Read afresh on every call: a rotated credential takes effect at once.
    """
    connection = Connection.objects.filter(name=name).first()
    return connection.as_definition() if connection is not None else None


def connection_names() -> set[str]:
    """The names of the connections that exist, which API calls may name."""
    return set(Connection.objects.values_list("name", flat=True))
