"""The claim's cost with 1,000,000 orders in the table, on PostgreSQL.

Fills a scratch database beside the one `DATABASE_URL` names (default
postgres://postgres@127.0.0.1:5432/statemanager) with orders in a realistic mix of
statuses, then times `orders.claims.claim_due_orders(limit=100)` and EXPLAIN ANALYZE of
its SELECT, each run rolled back so every run sees the same table.

    .venv/bin/python -m bench.claim_query [--orders 1000000] [--runs 50] [--limit 100]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

from bench.common import machine, scratch_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/statemanager"

# Per 1,000 orders: 5 pending and 2 waiting now due, 2 waiting due later, 1 running
# under a live lease, 1 running whose lease ran out; the rest finished.
FILL_SQL = """
INSERT INTO orders_order (
    order_id, workflow, snapshot_id, payload, data, status, current_step, error, failed_step,
    run, attempt, steps_in_run, step_state, resume_point, due_at, claim_token,
    lease_expires_at, cancel_requested, created_at, updated_at, finished_at
)
SELECT
    'fill-' || g, 'bench', %(snapshot)s, '{"sku": "SKU-1"}', '{}',
    CASE
        WHEN g %% 1000 < 5 THEN 'pending'
        WHEN g %% 1000 < 9 THEN 'waiting'
        WHEN g %% 1000 < 11 THEN 'running'
        WHEN g %% 100 < 85 THEN 'completed'
        WHEN g %% 100 < 98 THEN 'failed'
        ELSE 'cancelled'
    END,
    's1', '', '', 1, 0, 0, '{}', '{}',
    CASE
        WHEN g %% 1000 < 7 THEN now() - interval '1 second' * (1000000 - g)
        WHEN g %% 1000 < 9 THEN now() + interval '1 hour'
        WHEN g %% 1000 < 11 THEN now() - interval '1 second' * (1000000 - g)
    END,
    CASE WHEN g %% 1000 BETWEEN 9 AND 10 THEN gen_random_uuid() END,
    CASE
        WHEN g %% 1000 = 9 THEN now() + interval '1 hour'
        WHEN g %% 1000 = 10 THEN now() - interval '1 minute'
    END,
    false,
    now() - interval '1 second' * (1000000 - g),
    now(),
    CASE WHEN g %% 1000 >= 11 THEN now() END
FROM generate_series(1, %(count)s) AS g
"""


def fill(count: int) -> float:
    from django.db import connection

    from bench.common import workflow_definition
    from blueprints.models import WorkflowSnapshot

    snapshot = WorkflowSnapshot.objects.create(
        workflow="bench", blueprint_version=1, digest="fill", definition=workflow_definition("")
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(FILL_SQL, {"snapshot": snapshot.pk, "count": count})
        cursor.execute("ANALYZE orders_order")
    return time.perf_counter() - started


class Rollback(Exception):
    pass


def time_claims(runs: int, limit: int) -> list[float]:
    from django.db import transaction

    from orders.claims import claim_due_orders

    times = []
    for _ in range(runs):
        try:
            with transaction.atomic():
                started = time.perf_counter()
                claims = claim_due_orders(limit=limit, lease_seconds=60)
                times.append((time.perf_counter() - started) * 1000)
                if len(claims) != limit:
                    raise SystemExit(f"claimed {len(claims)}, expected {limit}")
                raise Rollback
        except Rollback:
            pass
    return times


def explain(runs: int, limit: int) -> tuple[list[float], str]:
    from django.db import connection, transaction
    from django.utils import timezone

    from orders.claims import due_candidates

    times, plan = [], ""
    for _ in range(runs):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                sql, params = due_candidates(timezone.now())[:limit].query.sql_with_params()
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                times.append(float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)))
                raise Rollback
        except Rollback:
            pass
    return times, plan


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered):6.2f} ms, p95 {p95:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        raise SystemExit("the claim query benchmark needs PostgreSQL (DATABASE_URL=postgres://…)")

    with scratch_database(url, suffix="claims"):
        from django.db import connection

        print(f"machine: {machine()}")
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            print(f"database: PostgreSQL {cursor.fetchone()[0]}")
        seconds = fill(args.orders)
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, count(*) FROM orders_order GROUP BY 1 ORDER BY 1")
            mix = ", ".join(f"{count} {status}" for status, count in cursor.fetchall())
        print(f"filled {args.orders} orders in {seconds:.1f} s: {mix}")
        claim_times = time_claims(args.runs, args.limit)
        explain_times, plan = explain(args.runs, args.limit)
        print(f"claim_due_orders(limit={args.limit}), {args.runs} runs: {summary(claim_times)}")
        print(f"EXPLAIN ANALYZE of its SELECT, {args.runs} runs: {summary(explain_times)}")
        print(plan)


if __name__ == "__main__":
    main()
