"""GET /health/: public liveness, backlog and fleet activity, for load balancers and
monitoring."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from hosts.models import Host
from hosts.selectors import hosts_holding_orders
from orders.selectors import (
    COUNT_CAP,
    last_batch,
    oldest_due_at,
    orders_due_count,
    running_lanes,
    steps_per_minute,
)

logger = logging.getLogger(__name__)


@require_GET
def health(request):
    """200 with the last batch, the due backlog (counted up to COUNT_CAP), the lanes running
    now, the steps finished per minute, and the hosts that hold orders (circuit breakers
    not closed, paused hosts); 503 when the database cannot be reached. A partner's open
    breaker is not State Manager's ill health: still 200."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        now = timezone.now()
        batch = last_batch()
        due = orders_due_count(now)
        oldest = oldest_due_at(now) if due else None
        lanes = running_lanes(now)
        steps = steps_per_minute(15, now)
        held_by = hosts_holding_orders()
    except DatabaseError as exc:
        logger.error("health check: database unavailable (%s)", str(exc).strip()[:300])
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
            "due_capped_at": COUNT_CAP,
            "oldest_due_seconds": round((now - oldest).total_seconds()) if oldest else None,
            "lanes": [
                {
                    "lane": lane.number,
                    "worker": lane.worker,
                    "since": lane.turn_started_at,
                    "orders": lane.turn_orders,
                }
                for lane in lanes
            ],
            "steps_per_minute": steps,
            "breakers": [
                {
                    "host": host.host,
                    "state": host.breaker_state,
                    "since": host.breaker_since,
                    "failure_rate": host.breaker_failure_rate,
                }
                for host in held_by
                if host.breaker_state != Host.Breaker.CLOSED
            ],
            "paused_hosts": [host.host for host in held_by if host.paused],
        }
    )
