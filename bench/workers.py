"""Speed-up of several worker processes over one, on a shared PostgreSQL database.

The same workload (N orders x 3 call steps against a local server answering after a
fixed latency) is run by 1 and then by 4 `manage.py process_orders` processes with
STATE_MANAGER_INTERVAL_SECONDS=0, on a scratch database beside the one `DATABASE_URL`
names (default postgres://postgres@127.0.0.1:5432/statemanager). The latency is chosen
so that one worker is the bottleneck: its concurrency caps it at
concurrency / latency steps a second, far below what the machine's CPUs can do.

    .venv/bin/python -m bench.workers [--orders 400] [--latency-ms 200]
        [--concurrency 10] [--batch-size 100] [--workers 1 4]

The orders become due a few seconds after the workers have started, and the clock runs
from then until the last order has completed, so process start-up is not counted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from bench.common import (
    ROOT,
    STEPS,
    LatencyServer,
    create_orders,
    drain_seconds,
    every_call_once,
    machine,
    scratch_database,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/statemanager"
START_DELAY_SECONDS = 5.0


def start_worker(database_url: str, *, concurrency: int, batch_size: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STATE_MANAGER_INTERVAL_SECONDS": "0",
        "STATE_MANAGER_CONCURRENCY": str(concurrency),
        "STATE_MANAGER_BATCH_SIZE": str(batch_size),
        "STATE_MANAGER_OUTBOUND_ALLOW": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "process_orders"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(workers: int, args, server: LatencyServer, database_url: str) -> float:
    """Seconds from the moment the orders are due until every one has completed."""
    from django.utils import timezone

    from orders.models import Order

    Order.objects.all().delete()
    server.reset()
    create_orders(args.orders, server.url, prefix=f"w{workers}")
    due = timezone.now() + timedelta(seconds=START_DELAY_SECONDS)
    Order.objects.update(due_at=due)
    processes = [
        start_worker(database_url, concurrency=args.concurrency, batch_size=args.batch_size)
        for _ in range(workers)
    ]
    try:
        time.sleep(max(0.0, (due - timezone.now()).total_seconds()))
        seconds = drain_seconds(args.orders, f"{workers} workers")
    finally:
        for process in processes:
            stop(process)
    every_call_once(server, args.orders, f"{workers} workers")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        raise SystemExit("the workers benchmark needs PostgreSQL (DATABASE_URL=postgres://…)")

    latency = args.latency_ms / 1000
    with LatencyServer(latency) as server, scratch_database(url, suffix="workers") as db_url:
        print(f"machine: {machine()}")
        print(
            f"workload: {args.orders} orders x {STEPS} steps, {args.latency_ms:g} ms latency, "
            f"concurrency {args.concurrency} and batch size {args.batch_size} per worker"
        )
        times = {}
        for workers in args.workers:
            times[workers] = run(workers, args, server, db_url)
            ideal = args.orders * STEPS * latency / (args.concurrency * workers)
            print(f"{workers} worker(s): {times[workers]:6.2f} s  (ideal {ideal:.2f} s)")
        first, *rest = args.workers
        for workers in rest:
            print(f"speed-up of {workers} over {first}: {times[first] / times[workers]:.2f}x")


if __name__ == "__main__":
    main()
