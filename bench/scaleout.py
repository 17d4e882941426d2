"""Scale-out: the orders 1 and 3 `qcluster` processes move, on PostgreSQL with Redis.

The deployed path: batch lanes handed out by django-q2 through the Redis broker to the
workers of every running qcluster (one lane per worker). The same latency-bound
workload (N orders x 3 call steps against a local server answering after a fixed
latency) is drained by 1 and then by 3 qclusters of Q_WORKERS workers each, on a
scratch database beside the one `DATABASE_URL` names, with the broker `REDIS_URL`
names. The clock runs from the moment the orders are due (the lanes were dispatched
before) until the last one has completed; the server counts the calls in flight.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python -m bench.scaleout
        [--orders 300] [--latency-ms 200] [--batch-size 50] [--concurrency 10]
        [--workers-per-cluster 2] [--clusters 1 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from datetime import timedelta

from bench.common import (
    STEPS,
    LatencyServer,
    create_orders,
    drain_seconds,
    every_call_once,
    machine,
    scratch_database,
    start_cluster,
)

START_DELAY_SECONDS = 3.0


def stop(cluster: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL for the whole process group (a lane's turn may be mid-sleep)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(cluster.pid, sig)
        except ProcessLookupError:
            return
        try:
            cluster.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(clusters: int, args, server: LatencyServer, database_url: str) -> tuple[float, dict]:
    """Seconds from the moment the orders are due until every one has completed."""
    from django.utils import timezone
    from django_q.brokers import get_broker

    from orders.lanes import dispatch_lanes, fleet_workers
    from orders.models import BatchLane, Order

    Order.objects.all().delete()
    BatchLane.objects.all().delete()
    get_broker().purge_queue()
    server.reset()
    create_orders(args.orders, server.url, prefix=f"c{clusters}")
    Order.objects.update(due_at=timezone.now() + timedelta(hours=1))
    processes = [start_cluster(database_url, args, interval=0) for _ in range(clusters)]
    try:
        workers = clusters * args.workers_per_cluster
        deadline = time.monotonic() + 60
        while fleet_workers() < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{clusters} clusters: their workers never all reported")
            time.sleep(0.2)
        lanes = dispatch_lanes()
        due = timezone.now() + timedelta(seconds=START_DELAY_SECONDS)
        Order.objects.update(due_at=due)
        time.sleep(max(0.0, (due - timezone.now()).total_seconds()))
        seconds = drain_seconds(args.orders, f"{clusters} clusters")
    finally:
        for process in processes:
            stop(process)
    stats = every_call_once(server, args.orders, f"{clusters} clusters")
    return seconds, {**stats, "lanes": len(lanes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers-per-cluster", type=int, default=2)
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("bench.scaleout needs DATABASE_URL=postgres://… and REDIS_URL=redis://…")

    latency = args.latency_ms / 1000
    with LatencyServer(latency) as server, scratch_database(url, suffix="scaleout") as db_url:
        print(f"machine: {machine()}")
        print(
            f"workload: {args.orders} orders x {STEPS} steps, {args.latency_ms:g} ms latency, "
            f"batch size {args.batch_size}, concurrency {args.concurrency}, "
            f"{args.workers_per_cluster} workers (lanes) per qcluster, Redis broker"
        )
        results = {}
        for clusters in args.clusters:
            seconds, stats = run(clusters, args, server, db_url)
            results[clusters] = (seconds, stats)
            print(
                f"{clusters} qcluster(s): {seconds:6.2f} s, {stats['lanes']} lanes, "
                f"{args.orders / seconds:6.1f} orders/s, "
                f"peak calls in flight {stats['max_in_flight']}"
            )
        first, *rest = args.clusters
        for clusters in rest:
            speedup = results[first][0] / results[clusters][0]
            in_flight = results[clusters][1]["max_in_flight"] / results[first][1]["max_in_flight"]
            print(
                f"{clusters} over {first}: {speedup:.2f}x the orders per second, "
                f"{in_flight:.2f}x the peak calls in flight"
            )


if __name__ == "__main__":
    main()
