"""The API's exception handler: core's, and a JSON 503 while the database is unreachable."""

from __future__ import annotations

from rest_framework.response import Response

from core.api import exception_handler as core_exception_handler
from statemanager.outage import UNAVAILABLE, database_unavailable


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """core.api's handler (every 400 in one shape, each service error with its status), and
    a 503 while the database cannot be reached."""
    if isinstance(exc, UNAVAILABLE):  # also when token authentication finds no database
        return database_unavailable(context["request"], exc)
    return core_exception_handler(exc, context)
