"""Per-host limits at the partner: a bulk reprocess run by 3 `qcluster` processes.

The deployed path, on PostgreSQL with the Redis broker (the limits' counters in Redis).
A local partner answers each call after `--latency-ms` and records when each arrived
and finished. Its host, 127.0.0.1, has a `Host` row with `--rate` requests a second and
`--max-concurrent` in flight. `--orders` failed orders of a one-call blueprint calling
it are reprocessed with `POST /api/orders/reprocess/` (a job frozen, queued on
django-q2 and run by a worker) while `--clusters` qclusters of `--workers-per-cluster`
workers (one batch lane each) drain them. The partner's own record then tells the peak
calls in any 1-second window, in any second counted from the first call and in flight at
once, each against its limit, and the log tells how often orders were held back.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python -m bench.partner_limits
        [--orders 10000] [--rate 50] [--max-concurrent 5] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import (
    LatencyServer,
    create_orders,
    machine,
    scratch_database,
    start_cluster,
)
from bench.scaleout import stop

HOST = "127.0.0.1"


def partner_figures(times: list[tuple[float, float]]) -> dict:
    """What the partner saw: peaks per 1-second window and in flight, the mean rate."""
    arrivals = sorted(arrived for arrived, _ in times)
    first, last = arrivals[0], arrivals[-1]
    window, end = 0, 0
    for start, at in enumerate(arrivals):
        while end < len(arrivals) and arrivals[end] < at + 1.0:
            end += 1
        window = max(window, end - start)
    seconds = Counter(int(at - first) for at in arrivals)
    events = sorted([(at, 1) for at, _ in times] + [(done, -1) for _, done in times])
    in_flight = peak = 0
    for _, change in events:  # a finish sorts before an arrival at the same instant
        in_flight += change
        peak = max(peak, in_flight)
    span = last - first
    return {
        "calls": len(arrivals),
        "span": span,
        "mean_rate": (len(arrivals) - 1) / span if span > 0 else math.inf,
        "max_window": window,
        "max_second": max(seconds.values()),
        "idle_seconds": sum(1 for s in range(int(span)) if seconds.get(s, 0) == 0),
        "max_in_flight": peak,
        "per_10s": [
            sum(seconds.get(s, 0) for s in range(tens, tens + 10))
            for tens in range(0, int(span) + 1, 10)
        ],
    }


def holds() -> dict:
    """The holds: every claim that did not complete its order was one (no call fails
    here); the log records one entry per spell of waiting, by order and reason."""
    from django.db.models import Count, Sum
    from django.db.models.fields.json import KT

    from orders.models import BatchRun, StepLog

    batches = BatchRun.objects.aggregate(n=Count("pk"), claimed=Sum("orders"))
    held = StepLog.objects.filter(kind=StepLog.Kind.STEP, outcome=StepLog.Outcome.WAITING)
    notes = held.annotate(note=KT("response__note"))
    per_order = list(held.values("order").annotate(n=Count("pk")).values_list("n", flat=True))
    return {
        "batches": batches["n"],
        "claimed": batches["claimed"] or 0,
        "spells": sum(per_order),
        "orders": len(per_order),
        "max": max(per_order, default=0),
        "mean": statistics.fmean(per_order) if per_order else 0.0,
        "concurrency": notes.filter(note__contains="calls in flight").count(),
        "rate": notes.filter(note__contains="requests per second").count(),
    }


def wait_completed(orders: int, timeout: float, started: float) -> float:
    """Seconds from `started` until every order completed; says how far it got every 30 s."""
    from django.db.models import Count

    from orders.models import Order

    told = started
    while (done := Order.objects.filter(status="completed").count()) < orders:
        now = time.monotonic()
        if now - started > timeout:
            statuses = dict(Order.objects.values_list("status").annotate(n=Count("pk")))
            raise SystemExit(f"not done after {timeout:.0f} s: {statuses}")
        if now - told >= 30:
            print(f"  {now - started:5.0f} s: {done} completed", flush=True)
            told = now
        time.sleep(0.2)
    return time.monotonic() - started


def run(args, server: LatencyServer, database_url: str) -> dict:
    from django.utils import timezone
    from django_q.brokers import get_broker

    from bench.pages import clients
    from hosts.limits import limits
    from hosts.models import Host
    from orders.lanes import dispatch_lanes, fleet_workers
    from orders.models import BulkJob

    get_broker().purge_queue()
    limits().reset(HOST)
    Host.objects.create(
        host=HOST, rate_per_second=args.rate, max_concurrent=args.max_concurrent or None
    )
    failed = {"status": "failed", "failed_step": "s1", "error": 'step "s1": HTTP 502'}
    create_orders(
        args.orders,
        server.url,
        prefix="limits",
        steps=1,
        resume_point={"step": "s1", "data": {}},
        finished_at=timezone.now(),
        due_at=None,
        **failed,
    )
    _, api = clients()
    processes = [
        start_cluster(database_url, args, interval=args.interval) for _ in range(args.clusters)
    ]
    try:
        deadline = time.monotonic() + 60
        while fleet_workers() < args.clusters * args.workers_per_cluster:
            if time.monotonic() > deadline:
                raise SystemExit("the clusters' workers never all reported")
            time.sleep(0.2)
        started = time.monotonic()
        answer = api.post(
            "/api/orders/reprocess/",
            {"status": "failed", "workflow": "bench", "from": "failed"},
            content_type="application/json",
        )
        if answer.status_code != 202:
            raise SystemExit(f"reprocess answered {answer.status_code}: {answer.content[:300]}")
        lanes = dispatch_lanes()  # as the schedule would, without waiting for it
        timeout = args.timeout or max(300.0, 4 * args.orders / args.rate)
        wall = wait_completed(args.orders, timeout, started)
    finally:
        for process in processes:
            stop(process)
    job = BulkJob.objects.get(pk=answer.json()["job"]["id"])
    job_seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at else 0
    return {
        "wall": wall,
        "lanes": len(lanes),
        "job": f"{job.status}, {job.done} done in {job_seconds:.1f} s",
    }


def report(args, result: dict, figures: dict, stats: dict, held: dict) -> None:
    orders, rate, most = args.orders, args.rate, args.max_concurrent
    ideal = orders / rate
    print(f"orders: {orders}, wall {result['wall']:.1f} s from the POST to the last completed")
    print(f"job: {result['job']}; {result['lanes']} lanes dispatched")
    calls = figures["calls"]
    if calls != orders or stats["max_per_key"] != 1:
        print(
            f"!! the partner got {calls} calls for {orders} orders "
            f"({stats['keys']} keys, at most {stats['max_per_key']} per key)"
        )
    else:
        print(f"partner: {calls} calls, each order's once")
    span = figures["span"]
    print(
        f"drain at the partner: {span:.1f} s first to last call = {span / ideal:.2f}x "
        f"orders/rate ({ideal:.1f} s); {figures['idle_seconds']} seconds without a call"
    )
    print("calls per 10 s: " + " ".join(str(n) for n in figures["per_10s"]))
    peak = figures["max_in_flight"]
    for label, value, limit, name in (
        ("mean rate", figures["mean_rate"], rate, "the rate limit"),
        ("max 1-s window", figures["max_window"], rate, "the rate limit"),
        ("max fixed second", figures["max_second"], rate, "the rate limit"),
        ("max in flight", peak, most, f"max_concurrent (server: {stats['max_in_flight']})"),
    ):
        ratio = f" = {value / limit:.2f}x {name}" if limit else " (no limit)"
        print(f"{label} {value:.4g}{ratio}")
    print(
        f"batches: {held['batches']}, {held['claimed']} orders claimed, so "
        f"{held['claimed'] - orders} holds = {(held['claimed'] - orders) / orders:.2f} per order"
    )
    print(
        f"holds logged: {held['spells']} spells ({held['concurrency']} concurrency, "
        f"{held['rate']} rate) on {held['orders']} orders, max {held['max']} per order, "
        f"mean {held['mean']:.2f} per held order, {held['spells'] / orders:.2f} per order"
    )


def exit_on_term(*_) -> None:
    """Tear down as on Ctrl-C, once: a second SIGTERM must not cut the teardown short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="rate_per_second of the host")
    parser.add_argument("--max-concurrent", type=int, default=5, help="0: no limit")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--workers-per-cluster", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--interval", type=int, default=1, help="seconds between a lane's batches")
    parser.add_argument("--dump", help="write the partner's (arrival, finish) pairs here")
    parser.add_argument("--timeout", type=float, default=0, help="0: 4 x orders/rate, >= 300 s")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit(
            "bench.partner_limits needs DATABASE_URL=postgres://… and REDIS_URL=redis://…"
        )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    signal.signal(signal.SIGTERM, exit_on_term)

    with (
        LatencyServer(args.latency_ms / 1000, record_times=True) as server,
        scratch_database(url, suffix="partner") as db_url,
    ):
        print(f"machine: {machine()}")
        print(
            f"workload: {args.orders} failed orders x 1 call, {args.latency_ms:g} ms latency; "
            f"host {HOST}: {args.rate:g}/s, {args.max_concurrent or 'any number'} at once; "
            f"{args.clusters} "
            f"qclusters x {args.workers_per_cluster} workers, batch size {args.batch_size}, "
            f"concurrency {args.concurrency}, interval {args.interval} s, Redis broker",
            flush=True,
        )
        result = run(args, server, db_url)
        times = server.times()
        if args.dump:
            Path(args.dump).write_text(json.dumps(times))
        report(args, result, partner_figures(times), server.stats(), holds())


if __name__ == "__main__":
    main()
