"""GET /health/: public liveness and backlog, for load balancers and monitoring."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from orders.selectors import last_batch, orders_due_count

logger = logging.getLogger(__name__)


@require_GET
def health(request):
    """200 with the last batch and the due backlog; 503 when the database cannot be reached."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        batch = last_batch()
        due = orders_due_count()
    except DatabaseError:
        logger.exception("health check: database unavailable")
        return JsonResponse({"database": "unavailable"}, status=503)
    return JsonResponse(
        {
            "database": "ok",
            "last_batch": None
            if batch is None
            else {
                "started_at": batch.started_at,
                "ended_at": batch.ended_at,
                "orders": batch.orders,
            },
            "due": due,
        }
    )
