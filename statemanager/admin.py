"""The admin site as the product's workplace: its title, the admins that need what only
this layer knows, and the dashboard on the index."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from hosts.admin import HostAdmin, breaker_badge, percent
from hosts.models import Host
from hosts.selectors import hosts_holding_orders
from orders import selectors
from orders.hosts_held import held_order_counts
from orders.messages import message_counts
from orders.models import Order
from orders.selectors import (
    activity_per_minute,
    failed_orders_by_step,
    held_by_paused_blueprints,
    last_batch,
    oldest_due_at,
    order_counts_by_status,
    orders_due_count,
    orders_total,
    running_lanes,
)

admin.site.site_header = "State Manager"
admin.site.site_title = "State Manager"
admin.site.index_title = "Dashboard"

# The host's page counts the orders its gate holds, which the hosts package cannot: its
# admin is registered here, given the orders' count (Django subclasses it with the option).
admin.site.register(Host, HostAdmin, count_held_orders=staticmethod(held_order_counts))


# The dashboard.

# The activity chart: this many hours back, in bars of this many minutes.
CHART_HOURS = 6
CHART_BAR_MINUTES = 10
# The dashboard reloads itself this often (statemanager/order-page.js).
DASHBOARD_REFRESH_SECONDS = 15


def order_list_url(**filters) -> str:
    url = reverse("admin:orders_order_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def dashboard_context() -> dict:
    """Orders by status, the due backlog and its oldest order's age, the paused blueprints
    and the due orders they hold, the paused hosts and open circuit breakers with the
    orders they hold, the last batch, steps and failures per minute of the last hours,
    and the failed orders by blueprint and step.

    Costs the same whatever the table holds: counts stop at `COUNT_CAP` ("10,000+"), and
    all orders together are PostgreSQL's estimate once the table is large; the failures
    read the failed orders, the chart the log of its hours.
    """

    def shown(count: int) -> str:
        cap = selectors.COUNT_CAP
        return f"{cap:,}+" if count >= cap else f"{count:,}"

    now = timezone.now()
    counts = order_counts_by_status()
    total, estimated = orders_total()
    due = orders_due_count(now)
    paused = held_by_paused_blueprints(now)
    held = min(sum(row["held"] for row in paused), selectors.COUNT_CAP)
    oldest = oldest_due_at(now) if due else None
    batch = last_batch()
    duration = None
    if batch is not None and batch.ended_at is not None:
        duration = (batch.ended_at - batch.started_at).total_seconds()
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
        "oldest_due_at": oldest,
        "oldest_due_age": age(now - oldest) if oldest else None,
        "due_url": order_list_url(due="now"),
        "held_count": held,
        "held_shown": shown(held),
        "paused_blueprints": [
            {
                **row,
                "held_shown": shown(row["held"]),
                "url": reverse("admin:blueprints_blueprint_change", args=[row["blueprint"].pk]),
                "orders_url": order_list_url(due="now", workflow=row["blueprint"].slug),
            }
            for row in paused
        ],
        **held_by_hosts(shown),
        "lanes": running_lanes(now),
        "activity_chart": activity_chart(*activity_per_minute(CHART_HOURS * 60, now)),
        "last_batch": batch,
        "last_batch_seconds": duration,
        "batch_list_url": reverse("admin:orders_batchrun_changelist"),
        "failures": [
            {
                **row,
                "url": order_list_url(
                    status__exact=Order.Status.FAILED,
                    workflow=row["workflow"],
                    failed_step=row["step"],
                ),
            }
            for row in failed_orders_by_step()
        ],
        "failures_url": order_list_url(status__exact=Order.Status.FAILED),
        "functions_url": reverse("admin:blueprints_blueprint_functions"),
        "partner_messages": messages_card(now),
        "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
        "every_host_url": reverse("admin:hosts_host_every"),
    }


def messages_card(now) -> dict:
    """Orders waiting for partners' messages, the messages kept for orders not yet
    waiting, and how long the oldest wait has lasted."""
    counts = message_counts()
    oldest = counts["oldest_wait"]
    return {
        **counts,
        "oldest_age": age(now - oldest) if oldest else None,
        "waits_url": reverse("admin:orders_messagewait_changelist"),
        "kept_url": reverse("admin:orders_message_changelist") + "?kept=yes",
    }


def held_by_hosts(shown) -> dict:
    """The paused hosts and the hosts whose circuit breaker is not closed, each with the
    orders its gate holds and a link to its page."""
    hosts = hosts_holding_orders()
    held = held_order_counts(host.host for host in hosts)

    def row(host: Host) -> dict:
        return {
            "host": host,
            "held_shown": shown(held[host.host]),
            "breaker": breaker_badge(host),
            "failure_rate": percent(host.breaker_failure_rate),
            "url": reverse("admin:hosts_host_change", args=[host.pk]),
            "orders_url": order_list_url(held_by=host.host),
        }

    return {
        "paused_hosts": [row(host) for host in hosts if host.paused],
        "open_breakers": [row(host) for host in hosts if host.breaker_state != Host.Breaker.CLOSED],
    }


def age(delta: timedelta) -> str:
    """How long, in the two largest units: "45 s", "12 min", "3 h 12 min", "2 d 4 h".

    >>> age(timedelta(hours=3, minutes=12, seconds=40)), age(timedelta(days=2, hours=4))
    ('3 h 12 min', '2 d 4 h')
    """
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


def activity_chart(
    steps: list[int], failures: list[int], *, width: int = 360, height: int = 80
) -> dict:
    """Bars of an inline SVG, one per `CHART_BAR_MINUTES`, oldest first: steps per minute,
    and in front of them failures per minute, on one scale up to the busiest bar."""
    size = CHART_BAR_MINUTES

    def per_minute(counts: list[int]) -> list[float]:
        return [sum(counts[i : i + size]) / size for i in range(0, len(counts), size)]

    step_rates, failure_rates = per_minute(steps), per_minute(failures)
    peak = max(step_rates) or 1
    pitch = width / len(step_rates)

    def bar(index: int, rate: float, least: float) -> dict:
        tall = round(max(least, height * rate / peak), 1)
        return {"x": round(index * pitch + 1, 1), "y": round(height - tall, 1), "height": tall}

    bars = [
        {
            "width": round(pitch - 2, 1),
            "steps": bar(index, rate, 1.0),  # a quiet bar: a tick
            "failures": bar(index, failure_rates[index], 0.0),
            "step_rate": f"{rate:.1f}",
            "failure_rate": f"{failure_rates[index]:.1f}",
            "minutes_ago": (len(step_rates) - 1 - index) * size,
        }
        for index, rate in enumerate(step_rates)
    ]
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "hours": len(steps) // 60,
        "middle": f"{len(steps) / 120:g}",
        "bar_minutes": size,
        "peak": f"{max(step_rates):.1f}",
        "now_steps": f"{step_rates[-1]:.1f}",
        "now_failures": f"{failure_rates[-1]:.1f}",
    }


_site_index = admin.site.index


def dashboard_index(request, extra_context=None):
    """The admin index with the dashboard, for those who may see orders."""
    context = dict(extra_context or {})
    if request.user.has_perm("orders.view_order"):
        context.update(dashboard_context())
    return _site_index(request, extra_context=context)


admin.site.index = dashboard_index
