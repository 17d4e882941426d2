"""Express cadence on the deployed path, with the settings a new deployment gets.

Real `qcluster` processes (default Q_WORKERS, interval, batch size and concurrency) on a
scratch database beside the one DATABASE_URL names, with the broker REDIS_URL names,
against a local API answering after a fixed latency:

- **start latency**: on an idle fleet, single orders created one at a time at random
  moments through the webhook's service (`orders.services.order_create`, which the
  webhook view answers right after); the time from its return to the order's first
  request at the API. Then the same for a callback's resumption (from
  `callback_receive`'s return to the next step's request) and a status notification's
  arrival (from the change's commit, the event's `occurred_at`, to the receiver).
- **drain**: a backlog posted while its blueprint is paused, then resumed; steps/s at
  the API from its first request to its last, on 1 qcluster and on 3, beside bare
  `requests` with the same number of calls in flight, in one run.
- **CPU per step**: user + system CPU of the qcluster processes, PostgreSQL's backends
  and Redis during the drain, per step.
- **idle cost**: transactions PostgreSQL counts in a minute with nothing due.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python -m bench.express
        [--singles 20] [--backlog 2000] [--latency-ms 50] [--clusters 1 3] [--idle-seconds 60]

Without DATABASE_URL: the embedded default (a SQLite file, the ORM broker), start
latencies only.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import STEPS, LatencyServer, machine, scratch_database, start_qcluster
from bench.scaleout import stop
from bench.throughput import run_bare

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def start_default_cluster(database_url: str) -> subprocess.Popen:
    """A qcluster as a new deployment runs it: only the database, broker and allowlist."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STATE_MANAGER_", "Q_WORKERS"))
    }
    env.update(
        DATABASE_URL=database_url,
        STATE_MANAGER_OUTBOUND_ALLOW="127.0.0.1",
        STATE_MANAGER_NOTIFY_SECRET=os.environ.get("STATE_MANAGER_NOTIFY_SECRET", "bench"),
        LOG_LEVEL="WARNING",
    )
    return start_qcluster(env)


def define(base_url: str, receiver_url: str) -> None:
    """The 3-call blueprint `bench`, a callback blueprint `bench-callback`, both notifying."""
    from apicalls.services import api_call_save
    from blueprints.services import blueprint_save

    for i in range(1, STEPS + 1):
        api_call_save(
            definition={
                "slug": f"step{i}",
                "name": f"Step {i}",
                "method": "POST",
                "url": f"{base_url}/step{i}",
                "body": {"order": "{{ order.order_id }}", "step": i},
                "save": {f"ref{i}": "{{ response.body.ref }}"},
            }
        )
    steps = [{"id": f"s{i}", "call": f"step{i}"} for i in range(1, STEPS + 1)]
    blueprint_save(definition={"slug": "bench", "name": "Bench", "steps": steps})
    callback_steps = [
        {"id": "s1", "call": "step1", "wait_for_callback": {"timeout_seconds": 600}},
        {"id": "s2", "call": "step2"},
    ]
    blueprint_save(
        definition={
            "slug": "bench-callback",
            "name": "Bench callback",
            "steps": callback_steps,
            "notify_url": receiver_url,
        }
    )


def first_arrival_after(server: LatencyServer, since: float, timeout: float = 30) -> float:
    """Seconds from `since` (time.monotonic) to the first request the API got after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        later = [arrived for arrived, _ in server.times() if arrived >= since]
        if later:
            return min(later) - since
        time.sleep(0.02)
    raise SystemExit(f"no request within {timeout:g} s")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, "
        f"worst {ordered[-1] * 1000:.0f} ms (n={len(ordered)})"
    )


def start_latency(server: LatencyServer, singles: int) -> list[float]:
    from orders.services import order_create

    latencies = []
    for n in range(singles):
        time.sleep(random.uniform(1.0, 3.0))
        order_create(order_id=f"single-{n}", workflow="bench", payload={})
        answered = time.monotonic()
        latencies.append(first_arrival_after(server, answered))
    return latencies


def callback_latency(server: LatencyServer, count: int) -> list[float]:
    from orders.callbacks import callback_receive
    from orders.models import Callback
    from orders.services import order_create

    latencies = []
    for n in range(count):
        order, _ = order_create(order_id=f"cb-{n}", workflow="bench-callback", payload={})
        callback = wait_for(lambda o=order: Callback.objects.filter(order=o).first())
        wait_for(lambda o=order: type(o).objects.filter(pk=o.pk, status="waiting").exists())
        time.sleep(random.uniform(0.5, 2.0))
        callback_receive(token=callback.token, outcome="success", data={})
        posted = time.monotonic()
        latencies.append(first_arrival_after(server, posted))
    return latencies


def wait_for(found, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit("timed out")


class Receiver:
    """A notification receiver noting when each event arrived (wall clock)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrivals.setdefault(self.headers["X-StateManager-Event-Id"], time.time())
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def latencies(self) -> list[float]:
        from orders.models import OrderEvent

        return [
            self.arrivals[str(event_id)] - occurred.timestamp()
            for event_id, occurred in OrderEvent.objects.values_list("event_id", "occurred_at")
            if str(event_id) in self.arrivals
        ]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of `pids`, with that of their children that ended (a database
    connection's backend is a child of PostgreSQL's postmaster)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def processes(*names: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def group_pids(cluster: subprocess.Popen) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == cluster.pid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def drain(clusters: list[subprocess.Popen], server: LatencyServer, backlog: int, run: str):
    from blueprints.models import Blueprint
    from blueprints.services import blueprint_pause, blueprint_resume
    from orders.services import order_create

    blueprint = Blueprint.objects.get(slug="bench")
    blueprint_pause(blueprint=blueprint, actor="bench")
    for n in range(backlog):
        order_create(order_id=f"{run}-{n}", workflow="bench", payload={})
    server.reset()
    workers = [pid for cluster in clusters for pid in group_pids(cluster)]
    services = processes("postgres", "redis-server")  # the postmaster counts ended backends
    cpu_before = cpu_seconds(workers), cpu_seconds(services)
    blueprint_resume(blueprint=blueprint, actor="bench")
    wait_for(lambda: len(server.times()) >= backlog * STEPS, timeout=1800)
    times = server.times()
    cpu_workers = cpu_seconds(workers) - cpu_before[0]
    cpu_services = cpu_seconds(services) - cpu_before[1]
    arrivals = sorted(arrived for arrived, _ in times)
    steps_per_second = (len(times) - 1) / (arrivals[-1] - arrivals[0])
    return steps_per_second, server.stats()["max_in_flight"], cpu_workers, cpu_services


def lanes_running(clusters: int, timeout: float = 120) -> None:
    """Wait until the lanes of `clusters` default qclusters (all workers but one each)
    hold their leases."""
    from django.conf import settings

    from orders.lanes import lanes_for
    from orders.models import BatchLane

    lanes = clusters * lanes_for(int(settings.Q_CLUSTER["workers"]))
    wait_for(lambda: BatchLane.objects.exclude(holder="").count() >= lanes, timeout=timeout)


def idle_transactions(seconds: float) -> float:
    from django.db import connection

    def commits() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    # Backends report their counts to pg_stat_database when idle, up to about ten seconds
    # late: the window starts after what came before is reported, and is read again as
    # long after its end. The reads of this function count two.
    settle = 15.0
    time.sleep(settle)
    before = commits()
    time.sleep(seconds + settle)
    return (commits() - before - 2) * 60 / (seconds + settle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 3], help="0: no drain")
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    if postgres and not os.environ.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL beside a PostgreSQL DATABASE_URL: the deployed path")
    if not postgres:
        print("SQLite with the ORM broker (the embedded default): start latencies only")
    os.environ.setdefault("STATE_MANAGER_NOTIFY_SECRET", "bench")
    print(f"machine: {machine()}")
    with (
        LatencyServer(args.latency_ms / 1000, record_times=True) as server,
        scratch_database(os.environ.get("DATABASE_URL"), suffix="express") as database_url,
    ):
        receiver = Receiver()
        define(server.url, receiver.url)
        clusters = [start_default_cluster(database_url)]
        try:
            lanes_running(1)  # the cluster started, its schedule dispatched the lanes
            if postgres:
                idle = idle_transactions(args.idle_seconds)
                print(f"idle: {idle:.0f} transactions a minute")
            print(f"new order's first call: {percentiles(start_latency(server, args.singles))}")
            print(f"callback's resumption: {percentiles(callback_latency(server, 10))}")
            print(f"notification's arrival: {percentiles(receiver.latencies())}")
            for count in [count for count in args.clusters if count > 0] if postgres else []:
                while len(clusters) < count:
                    clusters.append(start_default_cluster(database_url))
                lanes_running(count)
                rate, in_flight, cpu_workers, cpu_services = drain(
                    clusters, server, args.backlog, f"drain{count}"
                )
                steps = args.backlog * STEPS
                server.reset()
                bare = run_bare(args.backlog, server.url, concurrency=in_flight)
                bare_rate = steps / bare["wall"]
                print(
                    f"drain, {count} qcluster(s): {rate:.0f} steps/s with {in_flight} calls "
                    f"in flight; bare requests with {in_flight} in flight: {bare_rate:.0f} "
                    f"steps/s ({rate / bare_rate:.0%}); CPU per step: workers "
                    f"{cpu_workers / steps * 1000:.2f} ms + PostgreSQL/Redis "
                    f"{cpu_services / steps * 1000:.2f} ms = "
                    f"{(cpu_workers + cpu_services) / steps * 1000:.2f} ms"
                )
        finally:
            for cluster in clusters:
                stop(cluster)


if __name__ == "__main__":
    main()
