"""The admin pages and the API lists with 1,000,000 orders, on PostgreSQL.

Fills a database of its own, `sm_bench_pages` on the server `DATABASE_URL` names
(default postgres://postgres@127.0.0.1:5432/statemanager), migrates it and keeps it: a
later run reuses it (`--refill` empties and fills it again). Then requests each admin
page as a superuser and each API list with a token, through Django's test Client on the
real settings, and prints each page's median time, its number of queries and the time
they took.

    .venv/bin/python -m bench.pages [--orders 1000000] [--runs 7] [--database NAME] [--refill]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from bench.common import ROOT, machine, workflow_definition

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/statemanager"
DEFAULT_DATABASE = "sm_bench_pages"

# Orders created over the last 30 days, order ids `ORD-0000001` up. Per 1,000: 120 pending
# and 30 waiting now due (a backlog of 150,000), 10 waiting due later, 5 running under a
# live lease, 5 running whose lease ran out, 130 failed, 20 cancelled, 680 completed.
# One in ten is on the workflow `bench`, the others on the demo's `ecommerce-order`. Each
# payload names one of 50,000 customers (20 orders each); completed orders saved a tracking
# code of their own.
FILL_SQL = """
INSERT INTO orders_order (
    order_id, workflow, snapshot_id, payload, data, status, current_step, error, failed_step,
    run, attempt, steps_in_run, step_state, resume_point, due_at, claim_token,
    lease_expires_at, cancel_requested, created_at, updated_at, finished_at
)
SELECT
    'ORD-' || lpad(g::text, 7, '0'),
    CASE WHEN g %% 10 = 0 THEN 'bench' ELSE 'ecommerce-order' END,
    CASE WHEN g %% 10 = 0 THEN %(bench)s ELSE %(demo)s END,
    jsonb_build_object('sku', 'TEE', 'qty', 1 + g %% 5, 'email', 'c' || g || '@example.com',
                       'customer', jsonb_build_object('id', 'C-' || (g %% 50000))),
    CASE WHEN s = 'completed' THEN jsonb_build_object('total', 50, 'tracking', 'TRK-' || g)
         ELSE '{}' END,
    s,
    CASE
        WHEN s = 'pending' THEN 'validate'
        WHEN s = 'completed' THEN 'fulfil'
        WHEN s = 'failed' AND g %% 2 = 0 THEN 'validate'
        ELSE 'charge'
    END,
    CASE WHEN s = 'failed' THEN 'step "charge": HTTP 502' ELSE '' END,
    CASE WHEN s = 'failed' THEN CASE WHEN g %% 2 = 0 THEN 'validate' ELSE 'charge' END
        ELSE '' END,
    1, CASE WHEN s IN ('failed', 'waiting') THEN 2 ELSE 0 END, 0, '{}', '{}',
    CASE
        WHEN g %% 1000 < 150 OR s = 'running' THEN created
        WHEN g %% 1000 < 160 THEN now() + interval '1 hour'
    END,
    CASE WHEN s = 'running' THEN gen_random_uuid() END,
    CASE
        WHEN g %% 1000 BETWEEN 160 AND 164 THEN now() + interval '1 hour'
        WHEN g %% 1000 BETWEEN 165 AND 169 THEN now() - interval '1 minute'
    END,
    false,
    created,
    created + interval '1 minute',
    CASE WHEN s IN ('completed', 'failed', 'cancelled') THEN created + interval '1 minute' END
FROM (
    SELECT
        g,
        now() - interval '30 days' * (%(count)s - g) / %(count)s AS created,
        CASE
            WHEN g %% 1000 < 120 THEN 'pending'
            WHEN g %% 1000 < 160 THEN 'waiting'
            WHEN g %% 1000 < 170 THEN 'running'
            WHEN g %% 1000 < 300 THEN 'failed'
            WHEN g %% 1000 < 320 THEN 'cancelled'
            ELSE 'completed'
        END AS s
    FROM generate_series(1, %(count)s) AS g
) AS fill
"""

# A log for one order in 20: validate, then charge twice (the second attempt fails on
# failed orders), started when the order was created.
LOG_SQL = """
INSERT INTO orders_steplog (
    order_id, run, step, attempt, kind, started_at, duration_ms, request, response,
    outcome, error, actor
)
SELECT
    o.id, 1, CASE WHEN n = 1 THEN 'validate' ELSE 'charge' END, CASE WHEN n = 3 THEN 2 ELSE 1 END,
    'attempt', o.created_at + interval '1 second' * n, 30,
    '{"method": "POST", "url": "http://payments.test/charges",
      "headers": {"Authorization": "***"}, "body": {"amount": 50}}',
    jsonb_build_object('status', CASE WHEN n = 1 THEN 200 ELSE 502 END, 'headers', '{}'::jsonb,
                       'body', 'bad gateway'),
    CASE
        WHEN n = 1 THEN 'succeeded'
        WHEN n = 2 THEN 'retrying'
        WHEN o.status = 'failed' THEN 'failed'
        ELSE 'succeeded'
    END,
    CASE WHEN n > 1 THEN 'HTTP 502' ELSE '' END,
    ''
FROM orders_order AS o, generate_series(1, 3) AS n
WHERE o.id % 20 = 0
"""

# One failed order with a long log (more than the order page shows), and a batch a minute
# for the last 30 days.
LONG_LOG_SQL = """
INSERT INTO orders_steplog (
    order_id, run, step, attempt, kind, started_at, duration_ms, request, response,
    outcome, error, actor
)
SELECT %(pk)s, 1, 'charge', n, 'attempt', now() - interval '1 second' * (600 - n), 30,
       '{"method": "POST", "url": "http://payments.test/charges", "headers": {}, "body": {}}',
       '{"status": 502, "headers": {}, "body": "bad gateway"}',
       CASE WHEN n = 600 THEN 'failed' ELSE 'retrying' END, 'HTTP 502', ''
FROM generate_series(1, 600) AS n
"""
BATCHES_SQL = """
INSERT INTO orders_batchrun (started_at, ended_at, orders, worker)
SELECT now() - interval '1 minute' * n, now() - interval '1 minute' * n + interval '3 seconds',
       100, 'bench'
FROM generate_series(1, 43200) AS n
"""
LONG_LOG_ORDER = "ORD-0000299"  # failed (g % 1000 = 299)
USERNAME = "bench-pages"


def database_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def create_database(url: str, name: str) -> None:
    """Create the database `name` on the server of `url` unless it exists."""
    import psycopg

    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def open_database(name: str, benchmark: str) -> None:
    """Set Django up on the PostgreSQL database `name` (created, migrated) of the server
    DATABASE_URL names, and print the machine and the server's version."""
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        raise SystemExit(f"the {benchmark} benchmark needs PostgreSQL (DATABASE_URL=postgres://…)")
    create_database(url, name)
    os.environ["DATABASE_URL"] = database_url(url, name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statemanager.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(f"machine: {machine()}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(f"database: {name} on PostgreSQL {cursor.fetchone()[0]}")


def filled(count: int) -> bool:
    from orders.models import Order

    return Order.objects.filter(order_id=f"ORD-{count:07d}").exists()


def fill(count: int) -> float:
    import json

    from django.db import connection

    from blueprints.models import Blueprint, WorkflowSnapshot
    from blueprints.services import definitions_import, workflow_snapshot

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE orders_steplog, orders_callback, orders_order, orders_batchrun CASCADE"
        )
    definitions_import(document=json.loads((ROOT / "demo" / "definitions.json").read_text()))
    demo = workflow_snapshot(blueprint=Blueprint.objects.get(slug="ecommerce-order"))
    bench, _ = WorkflowSnapshot.objects.get_or_create(
        digest="bench-pages",
        defaults={
            "workflow": "bench",
            "blueprint_version": 1,
            "definition": workflow_definition("http://127.0.0.1:9"),
        },
    )
    with connection.cursor() as cursor:
        cursor.execute(FILL_SQL, {"count": count, "demo": demo.pk, "bench": bench.pk})
        cursor.execute(LOG_SQL)
        cursor.execute("SELECT id FROM orders_order WHERE order_id = %s", [LONG_LOG_ORDER])
        (pk,) = cursor.fetchone()
        cursor.execute(LONG_LOG_SQL, {"pk": pk})
        cursor.execute(BATCHES_SQL)
        # As autovacuum would leave a table at rest: statistics and the visibility map.
        for table in ("orders_order", "orders_steplog", "orders_batchrun"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def clients():
    """A test Client logged in to the admin as a superuser, and one with an API token."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(
        username=USERNAME, defaults={"is_staff": True, "is_superuser": True}
    )
    token, _ = Token.objects.get_or_create(user=user)
    admin = Client()
    admin.force_login(user)
    return admin, Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def pages() -> list[tuple[str, str, str]]:
    """(who, name, URL) of every page timed."""
    from django.utils import timezone

    from orders.models import Order

    pk = Order.objects.get(order_id=LONG_LOG_ORDER).pk
    short = Order.objects.filter(status="failed", log__isnull=False).values_list("pk", "order_id")
    short_pk, short_id = short.order_by("-pk")[:1].get()
    week_ago = (timezone.now() - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    orders = "/admin/orders/order/"
    return [
        ("admin", "dashboard", "/admin/"),
        ("admin", "order list", orders),
        ("admin", "order list, status failed", f"{orders}?status__exact=failed"),
        (
            "admin",
            "order list, failed on ecommerce-order",
            f"{orders}?status__exact=failed&workflow=ecommerce-order",
        ),
        ("admin", "order list, due now", f"{orders}?due=now"),
        ("admin", "order list, failed at charge (24 h)", f"{orders}?failed_step=charge"),
        ("admin", "order list, created this week", f"{orders}?created_at__gte={week_ago}"),
        ("admin", "order list, search an exact id", f"{orders}?q=ORD-0123457"),
        ("admin", "order list, search an id's beginning", f"{orders}?q=ORD-01234"),
        ("admin", "order list, search an id's middle", f"{orders}?q=12345"),
        ("admin", "order list, business key", f"{orders}?payload.customer.id=C-4242"),
        (
            "admin",
            "order list, search a business key",
            f"{orders}?q=payload.customer.id%3DC-4242",
        ),
        (
            "admin",
            "order list, failed with a business key",
            f"{orders}?status__exact=failed&payload.customer.id=C-4242",
        ),
        ("admin", "order list, saved data key", f"{orders}?data.tracking=TRK-123456"),
        ("admin", "order page", f"{orders}{short_pk}/change/"),
        ("admin", "order page, 600 log entries", f"{orders}{pk}/change/"),
        ("admin", "batch list", "/admin/orders/batchrun/"),
        ("api", "order list", "/api/orders/"),
        ("api", "order list, status failed", "/api/orders/?status=failed"),
        (
            "api",
            "order list, failed or cancelled",
            "/api/orders/?status=failed&status=cancelled",
        ),
        ("api", "order list, workflow bench", "/api/orders/?workflow=bench"),
        ("api", "order list, created this week", f"/api/orders/?created_after={week_ago}"),
        ("api", "order list, search 12345", "/api/orders/?search=12345"),
        ("api", "order list, search with no match", "/api/orders/?search=nomatch"),
        ("api", "order list, business key", "/api/orders/?payload.customer.id=C-4242"),
        ("api", "order list, saved data key", "/api/orders/?data.tracking=TRK-123456"),
        ("api", "order list, key spelling a number", "/api/orders/?payload.customer.id=4242"),
        ("api", "order list, key of 200,000 orders", "/api/orders/?payload.qty=3"),
        ("api", "order", f"/api/orders/{short_id}/"),
        ("api", "health", "/health/"),
    ]


def measure(client, url: str, runs: int) -> tuple[float, int, float]:
    """The median of `runs` requests in ms, then the queries of one more request and the
    time they took in the database (ms)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # and warm the caches
    if response.status_code != 200:
        raise SystemExit(f"{url}: HTTP {response.status_code}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = captured.captured_queries  # read now: the next request clears the log
    return (
        statistics.median(times),
        len(queries),
        sum(float(query["time"]) for query in queries) * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--refill", action="store_true", help="empty and fill the database again")
    args = parser.parse_args()
    open_database(args.database, "pages")
    from django.db import connection

    if args.refill or not filled(args.orders):
        print(f"filling {args.orders} orders ...", flush=True)
        print(f"filled in {fill(args.orders):.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM orders_order GROUP BY 1 ORDER BY 1")
        print(", ".join(f"{count} {status}" for status, count in cursor.fetchall()))

    admin, api = clients()
    print(f"{'page':<46} {'median':>9} {'queries':>8} {'in them':>9}")
    for who, name, url in pages():
        median, queries, database = measure(admin if who == "admin" else api, url, args.runs)
        print(
            f"{who + ': ' + name:<46} {median:6.1f} ms {queries:>8} {database:6.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
