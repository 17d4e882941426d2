"""Engine throughput against a bare `requests` thread pool, on the same calls, in one run.

N orders of 3 call steps go through the real batch path (`orders.batch.run_batch`) on a
fresh database, against a local server answering after a fixed latency; then the same
N x 3 calls go through a thread pool of the same concurrency with one `requests.Session`
per thread. The server runs in a process of its own, so only the client's CPU is counted.

    .venv/bin/python -m bench.throughput [--orders 300] [--latency-ms 50]
        [--concurrency 10] [--batch-size 300] [--profile]

`DATABASE_URL` (PostgreSQL) runs the engine on a scratch database beside the one it
names; without it, a temporary SQLite file. `--profile` also runs a few orders one by
one in the main thread under cProfile and prints where the engine spends its CPU.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import STEPS, LatencyServer, create_orders, machine, scratch_database


def run_engine(orders: int, base_url: str, *, batch_size: int, concurrency: int) -> dict:
    from orders.batch import run_batch
    from orders.models import Order

    create_orders(orders, base_url)
    wall, cpu = time.perf_counter(), time.process_time()
    batches = 0
    while run_batch(batch_size=batch_size, concurrency=concurrency).claimed:
        batches += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    completed = Order.objects.filter(status="completed").count()
    if completed != orders:
        raise SystemExit(f"engine: only {completed} of {orders} orders completed")
    return {"wall": wall, "cpu": cpu, "batches": batches}


def run_bare(orders: int, base_url: str, *, concurrency: int) -> dict:
    """The same calls, each order's 3 steps in sequence, `concurrency` orders at once."""
    import requests

    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def one_order(index: int) -> None:
        for step in range(1, STEPS + 1):
            response = session().post(
                f"{base_url}/step{step}",
                json={"order": f"bare-{index}", "sku": f"SKU-{index % 97}", "step": step},
                headers={"Idempotency-Key": f"bare-{index}-{step}"},
                timeout=10,
            )
            response.raise_for_status()
            response.json()

    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one_order, range(orders)))
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def profile_engine(orders: int, base_url: str, *, top: int = 30) -> str:
    """Advance `orders` orders one by one in this thread under cProfile."""
    from orders.claims import claim_due_orders
    from orders.engine.config import EngineConfig
    from orders.engine.runner import advance_order
    from orders.models import Order

    Order.objects.all().delete()
    create_orders(orders, base_url, prefix="profile")
    config = EngineConfig.from_settings()
    claims = claim_due_orders(limit=orders, lease_seconds=60)
    profiler = cProfile.Profile()
    profiler.enable()
    for claim in claims:
        advance_order(claim.order_pk, claim.token, config)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    steps = args.orders * STEPS
    ideal = steps * latency / args.concurrency

    with LatencyServer(latency) as server, scratch_database(os.environ.get("DATABASE_URL")) as url:
        from django.db import connection

        print(f"machine: {machine()}")
        print(f"database: {connection.vendor} (scratch: {url.rsplit('/', 1)[-1]})")
        print(
            f"workload: {args.orders} orders x {STEPS} steps, {args.latency_ms:g} ms latency, "
            f"concurrency {args.concurrency}, batch size {args.batch_size}"
        )
        engine = run_engine(
            args.orders, server.url, batch_size=args.batch_size, concurrency=args.concurrency
        )
        stats = server.stats()
        if stats["requests"] != steps or stats["max_per_key"] != 1:
            raise SystemExit(f"engine: the server saw {stats}, expected {steps} distinct calls")
        engine_in_flight = stats["max_in_flight"]
        server.reset()
        bare = run_bare(args.orders, server.url, concurrency=args.concurrency)

        print(f"ideal  {ideal:7.2f} s  (N x {STEPS} x latency / concurrency)")
        print(
            f"bare   {bare['wall']:7.2f} s  {bare['cpu'] * 1000 / steps:6.2f} ms CPU/step  "
            f"({ideal / bare['wall']:.0%} of ideal)"
        )
        print(
            f"engine {engine['wall']:7.2f} s  {engine['cpu'] * 1000 / steps:6.2f} ms CPU/step  "
            f"({engine['batches']} batches, at most {engine_in_flight} calls in flight)"
        )
        print(f"efficiency (bare / engine): {bare['wall'] / engine['wall']:.1%}")
        print(f"CPU per step, engine / bare: {engine['cpu'] / bare['cpu']:.2f}x")
        if bare["wall"] > ideal * 1.1:
            print("warning: the bare baseline is more than 10% slower than ideal")
        if args.profile:
            print(profile_engine(min(args.orders, 100), server.url))


if __name__ == "__main__":
    main()
