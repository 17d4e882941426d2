"""What the API answers while the database cannot be reached: a JSON 503, as /health/ does."""

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.log import log_response

# The errors of a database that is down, unreachable or too busy; not those of a bad query.
UNAVAILABLE = (OperationalError, InterfaceError)


def database_unavailable(request, exc: Exception) -> JsonResponse:
    """503 `{"detail": "database unavailable"}`, logged once in one line with its cause: an
    outage fails every request, and a traceback for each would bury the log."""
    response = JsonResponse({"detail": "database unavailable"}, status=503)
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    log_response(
        "Database unavailable: %s %s (%s)",
        request.method,
        request.path,
        reason[:500],
        response=response,
        request=request,
    )
    return response
