"""What `GET /metrics` shows, for the whole fleet in one scrape (contract §12).

Two sources, each for what only it knows:

- the database, for the state of the fleet, read with a few aggregate queries that
  indexes answer (well under a second at a million orders: `bench/metrics_scrape.py`):
  orders by status (`order_lease`, whose first column is the status), the due backlog and
  its oldest order (the partial index `order_claimable_due`), breaker states (one row per
  host) and lanes busy (one row per lane);
- `orders.counters`, for what happened in processes: steps and attempts by blueprint,
  step and outcome, call durations by host, holds by host and reason, webhook answers by
  status, notification deliveries by outcome.

No order id is ever a label: a series per order would grow without bound.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from hosts.models import Host
from orders import counters
from orders.models import BatchLane, Order

PREFIX = "statemanager_"

# The counts of `orders.counters`: their help and label names.
COUNTERS = {
    "steps": ("Steps finished, by blueprint, step and outcome.", ["blueprint", "step", "outcome"]),
    "attempts": (
        "Calls sent, by blueprint, step and outcome.",
        ["blueprint", "step", "outcome"],
    ),
    "holds": ("Calls held back by their host, by host and reason.", ["host", "reason"]),
    "webhook_responses": ("Answers of the webhook (POST /api/orders/), by status.", ["status"]),
    "notification_deliveries": ("Status notifications posted, by outcome.", ["outcome"]),
}
HISTOGRAMS = {
    "call_duration_seconds": ("How long outbound calls took, by host.", ["host"]),
}


class FleetCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from database_metrics()
        yield from process_metrics(counters.read())


def database_metrics() -> Iterator[Metric]:
    now = timezone.now()
    by_status = dict(
        Order.objects.order_by()
        .values_list("status")
        .annotate(n=Count("*"))
        .values_list("status", "n")
    )
    orders = GaugeMetricFamily(f"{PREFIX}orders", "Orders by status.", labels=["status"])
    for status in Order.Status.values:
        orders.add_metric([status], by_status.get(status, 0))
    yield orders

    due = Order.objects.filter(
        status__in=[Order.Status.PENDING, Order.Status.WAITING], due_at__lte=now
    ).aggregate(n=Count("*"), oldest=Min("due_at"))
    yield GaugeMetricFamily(f"{PREFIX}orders_due", "Orders due now, not yet claimed.", due["n"])
    age = (now - due["oldest"]).total_seconds() if due["oldest"] else 0.0
    yield GaugeMetricFamily(
        f"{PREFIX}oldest_due_order_age_seconds", "How long the oldest due order has waited.", age
    )

    breakers = GaugeMetricFamily(
        f"{PREFIX}host_breaker_state",
        "1 for the state each host's circuit breaker is in.",
        labels=["host", "state"],
    )
    for host, state in Host.objects.values_list("host", "breaker_state"):
        for known in Host.Breaker.values:
            breakers.add_metric([host, known], 1.0 if state == known else 0.0)
    yield breakers

    lanes = BatchLane.objects.aggregate(
        n=Count("*"), busy=Count("number", filter=Q(lease_expires_at__gt=now))
    )
    yield GaugeMetricFamily(f"{PREFIX}lanes", "Batch lanes.", lanes["n"])
    yield GaugeMetricFamily(f"{PREFIX}lanes_busy", "Batch lanes in a turn.", lanes["busy"])


def process_metrics(rows: list[tuple[str, dict[str, str], float]]) -> Iterator[Metric]:
    families: dict[str, Metric] = {}
    for name, (documentation, labels) in COUNTERS.items():
        families[name] = CounterMetricFamily(f"{PREFIX}{name}", documentation, labels=labels)
    histograms: dict[str, dict[tuple, dict]] = {name: defaultdict(dict) for name in HISTOGRAMS}
    for name, labels, value in rows:
        if name in COUNTERS:
            names = COUNTERS[name][1]
            families[name].add_metric([labels.get(label, "") for label in names], value)
            continue
        base, _, part = name.rpartition("_")
        if base in HISTOGRAMS:
            series = tuple(labels.get(label, "") for label in HISTOGRAMS[base][1])
            if part == "bucket":
                histograms[base][series].setdefault("buckets", []).append((labels["le"], value))
            else:
                histograms[base][series][part] = value
    yield from families.values()
    for name, (documentation, labels) in HISTOGRAMS.items():
        family = HistogramMetricFamily(f"{PREFIX}{name}", documentation, labels=labels)
        for series, parts in sorted(histograms[name].items()):
            buckets = [b for b in parts.get("buckets", []) if b[0] != "+Inf"]
            buckets.append(("+Inf", parts.get("count", 0.0)))  # every observation
            family.add_metric(list(series), buckets, parts.get("sum", 0.0))
        yield family


def registry() -> CollectorRegistry:
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(FleetCollector())
    return fleet
