"""A `/metrics` scrape with 1,000,000 orders in the table, on PostgreSQL.

Fills a scratch database beside the one `DATABASE_URL` names with the orders of
`bench/claim_query.py` (7,000 due, the rest running, waiting later or finished), 20
hosts and the process counts of 20 blueprints × 10 steps × 6 outcomes (attempts, steps,
a call-duration histogram per host) in the shared store (Redis when REDIS_URL is set,
else the `MetricCount` table); then times `GET /metrics` through Django's test Client
with the token, and EXPLAIN ANALYZE of each database query.

    DATABASE_URL=postgres://… [REDIS_URL=redis://…] .venv/bin/python -m bench.metrics_scrape \
        [--orders 1000000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

from bench.claim_query import DEFAULT_URL, fill
from bench.common import machine, scratch_database

TOKEN = "bench-token"
QUERIES = {
    "orders by status": "SELECT status, count(*) FROM orders_order GROUP BY status",
    "due backlog and oldest": "SELECT count(*), min(due_at) FROM orders_order "
    "WHERE status IN ('pending', 'waiting') AND due_at <= now()",
}


def fill_counts() -> int:
    from hosts.models import Host
    from orders import counters

    counters.reset()
    for h in range(20):
        Host.objects.create(host=f"api-{h}.example")
        for value in (0.01, 0.2, 1.5):
            counters.observe("call_duration_seconds", value, host=f"api-{h}.example")
    outcomes = ("succeeded", "failed", "ended", "retry_later", "held", "awaiting_callback")
    for b in range(20):
        for s in range(10):
            for outcome in outcomes:
                labels = {"blueprint": f"bp-{b}", "step": f"s{s}", "outcome": outcome}
                counters.add("steps", 7, **labels)
                counters.add("attempts", 9, **labels)
    series = len(counters._pending)
    counters.flush()
    return series


def scrape_times(runs: int) -> tuple[list[float], int]:
    from django.test import Client

    client = Client()
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        size = len(response.content)
    return times, size


def explain(sql: str) -> tuple[float, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)), plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        raise SystemExit("the scrape benchmark needs PostgreSQL (DATABASE_URL=postgres://…)")
    os.environ["STATE_MANAGER_METRICS_TOKEN"] = TOKEN
    with scratch_database(url, suffix="metrics"):
        from django.conf import settings
        from django.db import connection

        print(f"machine: {machine()}")
        seconds = fill(args.orders)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE orders_order")
        store = "Redis" if settings.REDIS_URL else "the database"
        print(f"filled {args.orders} orders in {seconds:.1f} s; {fill_counts()} counts in {store}")
        scrape_times(2)  # warm up
        times, size = scrape_times(args.runs)
        p95 = sorted(times)[min(len(times) - 1, int(len(times) * 0.95))]
        print(
            f"GET /metrics, {args.runs} runs: median {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms, {size} bytes"
        )
        for name, sql in QUERIES.items():
            ms, plan = explain(sql)
            print(f"{name}: {ms:.1f} ms\n{plan}")


if __name__ == "__main__":
    main()
