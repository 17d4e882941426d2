"""The admin site as the product's workplace: its title and the dashboard on the index."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from orders import selectors
from orders.models import Order
from orders.selectors import (
    FAILURES_WINDOW,
    failed_steps_since,
    last_batch,
    oldest_due_at,
    order_counts_by_status,
    orders_due_count,
    orders_total,
    running_lanes,
    steps_per_minute,
)

admin.site.site_header = "State Manager"
admin.site.site_title = "State Manager"
admin.site.index_title = "Dashboard"


# The dashboard.


def order_list_url(**filters) -> str:
    url = reverse("admin:orders_order_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def dashboard_context() -> dict:
    """Orders by status, the due backlog, the last batch and the failing steps of the day.

    Costs the same whatever the table holds: counts stop at `COUNT_CAP` ("10,000+"), and
    all orders together are PostgreSQL's estimate once the table is large.
    """

    def shown(count: int) -> str:
        cap = selectors.COUNT_CAP
        return f"{cap:,}+" if count >= cap else f"{count:,}"

    counts = order_counts_by_status()
    total, estimated = orders_total()
    due = orders_due_count()
    batch = last_batch()
    duration = None
    if batch is not None and batch.ended_at is not None:
        duration = (batch.ended_at - batch.started_at).total_seconds()
    since = timezone.now() - FAILURES_WINDOW
    return {
        "status_counts": [
            {
                "status": status,
                "label": label,
                "count": counts.get(status, 0),
                "shown": shown(counts.get(status, 0)),
                "url": order_list_url(status__exact=status),
            }
            for status, label in Order.Status.choices
        ],
        "orders_total": total,
        "orders_total_shown": f"about {total:,}" if estimated else f"{total:,}",
        "due_count": due,
        "due_shown": shown(due),
        "oldest_due_at": oldest_due_at() if due else None,
        "due_url": order_list_url(due="now"),
        "lanes": running_lanes(),
        "steps_chart": steps_chart(steps_per_minute(15)),
        "last_batch": batch,
        "last_batch_seconds": duration,
        "batch_list_url": reverse("admin:orders_batchrun_changelist"),
        "failed_steps": [
            {
                "step": step,
                "count": count,
                "url": order_list_url(failed_step=step),
            }
            for step, count in failed_steps_since(since)[:10]
        ],
        "functions_url": reverse("admin:blueprints_blueprint_functions"),
    }


def steps_chart(counts: list[int], *, width: int = 260, height: int = 60) -> dict:
    """Bars of an inline SVG for steps per minute, oldest first, scaled to the busiest."""
    peak = max(counts) or 1
    step = width / len(counts)
    bars = [
        {
            "x": round(index * step + 1, 1),
            "width": round(step - 2, 1),
            "height": max(1.0, round(height * count / peak, 1)),  # an empty minute: a tick
            "y": round(height - max(1.0, height * count / peak), 1),
            "count": count,
            "minutes_ago": len(counts) - 1 - index,
        }
        for index, count in enumerate(counts)
    ]
    return {"bars": bars, "width": width, "height": height, "peak": max(counts), "now": counts[-1]}


_site_index = admin.site.index


def dashboard_index(request, extra_context=None):
    """The admin index with the dashboard, for those who may see orders."""
    context = dict(extra_context or {})
    if request.user.has_perm("orders.view_order"):
        context.update(dashboard_context())
    return _site_index(request, extra_context=context)


admin.site.index = dashboard_index
