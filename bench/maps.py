"""What an item of a map step costs, beside a plain call step, on the same calls.

Three workloads through the real batch path (`orders.batch.run_batch`) on a fresh
database, against a local server answering after a fixed latency (in a process of its own):

- plain: `--calls` orders of one call step, `--concurrency` orders at once;
- map: `--calls` / `--items` orders of one map step over `--items` items, with
  `max_concurrency` `--concurrency` and one order at a time (the same calls in flight);
- big map: one order mapping over 1,000 items (`STATE_MANAGER_MAX_MAP_ITEMS`'s default)
  with `max_concurrency` `--concurrency`, sampling the process's threads while it runs.

Each prints its wall time, process CPU per call, SQL statements per call (every
connection's, counted by an execute wrapper: reads, inserts, updates and the
PostgreSQL writes of one statement, `WITH …`), and on PostgreSQL
the transactions committed per call (`pg_stat_database.xact_commit` of the scratch
database). It checks the server saw every call exactly once.

    .venv/bin/python -m bench.maps [--calls 1000] [--items 100] [--latency-ms 20]
        [--concurrency 10]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter

from bench.common import LatencyServer, machine, scratch_database

STATEMENTS: Counter = Counter()
_lock = threading.Lock()


def count_statements(execute, sql, params, many, context):
    kind = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    with _lock:
        STATEMENTS[kind] += 1
    return execute(sql, params, many, context)


def watch_connections() -> None:
    from django.db.backends.signals import connection_created

    def wrap(sender, connection, **kwargs) -> None:
        connection.execute_wrappers.append(count_statements)

    connection_created.connect(wrap, weak=False)


def commits() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def snapshot(base_url: str, steps: list[dict]):
    from blueprints.models import WorkflowSnapshot

    api_call = {
        "slug": "reserve",
        "name": "Reserve",
        "method": "POST",
        "url": f"{base_url}/reserve",
        "body": {"order": "{{ order.order_id }}", "sku": "{{ params.sku }}"},
        "save": {"ref": "{{ response.body.ref }}"},
    }
    definition = {
        "blueprint": {"slug": "bench", "name": "Bench", "steps": steps},
        "api_calls": {"reserve": api_call},
    }
    return WorkflowSnapshot.objects.create(
        workflow="bench",
        blueprint_version=1,
        digest=f"bench-{time.time_ns()}",
        definition=definition,
    )


def create(count: int, items: int, base_url: str, *, concurrency: int, prefix: str) -> None:
    from orders.models import Order

    if items:
        spec = {
            "items": "{{ input.lines }}",
            "max_concurrency": concurrency,
            "call": "reserve",
            "params": {"sku": "{{ item.sku }}"},
        }
        steps = [{"id": "lines", "map": spec, "save": {"refs": "{{ results | length }}"}}]
        payload = {"lines": [{"sku": f"SKU-{i % 97}"} for i in range(items)]}
    else:
        steps = [{"id": "line", "call": "reserve", "params": {"sku": "SKU-1"}}]
        payload = {}
    pinned = snapshot(base_url, steps)
    Order.objects.bulk_create(
        Order(
            order_id=f"{prefix}-{i}",
            workflow="bench",
            snapshot=pinned,
            payload=payload,
            current_step=steps[0]["id"],
        )
        for i in range(count)
    )


def measure(label: str, calls: int, *, concurrency: int, server: LatencyServer) -> dict:
    from orders.batch import run_batch
    from orders.models import Order

    threads = [threading.active_count()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            threads.append(threading.active_count())

    sampler = threading.Thread(target=sample, daemon=True)
    STATEMENTS.clear()
    before = commits()
    sampler.start()
    wall, cpu = time.perf_counter(), time.process_time()
    while run_batch(batch_size=1000, concurrency=concurrency).claimed:
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done.set()
    sampler.join()
    after = commits()
    left = Order.objects.exclude(status="completed").count()
    if left:
        raise SystemExit(f"{label}: {left} orders did not complete")
    stats = server.stats()
    if stats["requests"] != calls or stats["max_per_key"] != 1:
        raise SystemExit(f"{label}: the server saw {stats}, expected {calls} distinct calls")
    server.reset()
    Order.objects.all().delete()
    return {
        "label": label,
        "wall": wall,
        "cpu_ms": cpu * 1000 / calls,
        "statements": {kind: count / calls for kind, count in STATEMENTS.items()},
        "commits": None if before is None else (after - before - 1) / calls,
        "in_flight": stats["max_in_flight"],
        "threads": max(threads),
    }


def show(row: dict) -> None:
    shown = ", ".join(
        f"{kind} {row['statements'].get(kind, 0):.2f}"
        for kind in ("SELECT", "INSERT", "UPDATE", "WITH")
    )
    commits = "" if row["commits"] is None else f"  {row['commits']:.2f} commits/call"
    print(
        f"{row['label']:<28} {row['wall']:6.2f} s  {row['cpu_ms']:5.2f} ms CPU/call  "
        f"statements/call: {shown}{commits}  (peak {row['in_flight']} in flight, "
        f"{row['threads']} threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    maps = max(1, args.calls // args.items)

    with LatencyServer(latency) as server, scratch_database(os.environ.get("DATABASE_URL")) as url:
        from django.db import connection

        watch_connections()
        print(f"machine: {machine()}")
        print(f"database: {connection.vendor} (scratch: {url.rsplit('/', 1)[-1]})")
        print(
            f"workload: {args.calls} calls, {args.latency_ms:g} ms latency, "
            f"{args.concurrency} in flight; ideal {args.calls * latency / args.concurrency:.2f} s"
        )
        create(args.calls, 0, server.url, concurrency=args.concurrency, prefix="plain")
        show(
            measure(
                "plain: 1 call step/order", args.calls, concurrency=args.concurrency, server=server
            )
        )
        create(maps, args.items, server.url, concurrency=args.concurrency, prefix="map")
        label = f"map: {maps} x {args.items} items"
        show(measure(label, maps * args.items, concurrency=1, server=server))
        create(1, 1000, server.url, concurrency=args.concurrency, prefix="big")
        show(measure("map: 1 x 1000 items", 1000, concurrency=1, server=server))


if __name__ == "__main__":
    main()
