"""Memory of a qcluster's workers while a large backlog drains (PostgreSQL + Redis).

Fills a scratch database with N due orders (3 call steps each, against a local server
with a fixed latency), starts one `qcluster` (Q_WORKERS workers: all but one run a lane),
dispatches the lanes, and samples the resident memory of the cluster's processes every
few seconds for a while: the orders drained so far and each process's RSS. Flat memory
means a batch leaves nothing behind however long the backlog is. The lanes drain with
the default cadence (a batch after a batch while orders are due): `Q_WORKERS` - 1 lanes.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python -m bench.memory
        [--orders 100000] [--seconds 180] [--latency-ms 20] [--workers 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.common import LatencyServer, create_orders, machine, scratch_database, start_qcluster
from bench.scaleout import stop

SAMPLE_EVERY_SECONDS = 10.0


def group_rss_mib(group: int) -> dict[int, float]:
    """RSS in MiB of every process of a process group, by pid."""
    sizes = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # pgrp
                pid = int(status.parent.name)
                pages = int((status.parent / "statm").read_text().split()[1])
                sizes[pid] = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError, ValueError):
            continue
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("bench.memory needs DATABASE_URL=postgres://… and REDIS_URL=redis://…")

    with (
        LatencyServer(args.latency_ms / 1000) as server,
        scratch_database(url, suffix="memory") as db_url,
    ):
        from django_q.brokers import get_broker

        from orders.lanes import dispatch_lanes, fleet_workers, lanes_for
        from orders.models import Order

        print(f"machine: {machine()}")
        get_broker().purge_queue()
        create_orders(args.orders, server.url, prefix="m")
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "Q_WORKERS": str(args.workers),
            "STATE_MANAGER_OUTBOUND_ALLOW": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
        cluster = start_qcluster(env)
        try:
            while fleet_workers() < args.workers:
                time.sleep(0.2)
            dispatch_lanes()
            lanes = lanes_for(args.workers)
            print(f"{args.orders} orders due, {lanes} lanes, {args.latency_ms:g} ms latency")
            print(f"{'seconds':>8} {'completed':>10}  RSS MiB of the cluster's processes")
            started = time.monotonic()
            while time.monotonic() - started < args.seconds:
                time.sleep(SAMPLE_EVERY_SECONDS)
                done = Order.objects.filter(status="completed").count()
                sizes = sorted(group_rss_mib(cluster.pid).values(), reverse=True)
                shown = " ".join(f"{size:6.1f}" for size in sizes)
                print(f"{time.monotonic() - started:8.0f} {done:10d}  {shown}", flush=True)
                if done == args.orders:
                    break
        finally:
            stop(cluster)


if __name__ == "__main__":
    main()
