"""The API's exception handler: every 400 in the contract's one shape, and a JSON 503 while
the database is unreachable."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.api import BadRequest, flat_errors
from statemanager.outage import UNAVAILABLE, database_unavailable


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, with every 400 in one shape: {"errors": ["<place>: <reason>", ...]}."""
    if isinstance(exc, BadRequest):
        return Response({"errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": [f"body: {exc.detail}"]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"errors": flat_errors(exc.detail)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, UNAVAILABLE):  # also when token authentication finds no database
        return database_unavailable(context["request"], exc)
    return drf_exception_handler(exc, context)
