"""What the benchmarks share: a scratch database, a latency server, the 3-step workflow.

Every benchmark runs on a database of its own, made with Django's test-database
machinery (a temporary SQLite file by default, or a `<name>_bench` database next to the
one `DATABASE_URL` names) and dropped at the end, so a benchmark never touches the
database the application uses.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = 3


# The machine.


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    return f"{os.cpu_count()} CPUs ({model}), {memory}, Python {platform.python_version()}"


# The scratch database.


@contextmanager
def scratch_database(database_url: str | None, *, suffix: str = "bench"):
    """Set Django up on a fresh, migrated database; yields its URL and drops it after."""
    tmp = None
    if not database_url:
        tmp = tempfile.mkdtemp(prefix="statemanager-bench-")
        database_url = f"sqlite:///{tmp}/{suffix}.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statemanager.settings")
    os.environ.setdefault("STATE_MANAGER_OUTBOUND_ALLOW", "127.0.0.1")
    import django

    django.setup()
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        db["TEST"]["NAME"] = db["NAME"]
    else:
        db["TEST"]["NAME"] = f"{db['NAME']}_{suffix}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield url_of(connection.settings_dict)
    finally:
        from django.db import connections

        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def start_cluster(database_url: str, args, *, interval: int) -> subprocess.Popen:
    """A `qcluster` process on `database_url` with the run's workers, concurrency and batch
    size, lanes claiming again `interval` seconds after a batch, calling 127.0.0.1."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "Q_WORKERS": str(args.workers_per_cluster),
        "STATE_MANAGER_INTERVAL_SECONDS": str(interval),
        "STATE_MANAGER_CONCURRENCY": str(args.concurrency),
        "STATE_MANAGER_BATCH_SIZE": str(args.batch_size),
        "STATE_MANAGER_OUTBOUND_ALLOW": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    return start_qcluster(env)


def start_qcluster(env: dict) -> subprocess.Popen:
    """`manage.py qcluster` with `env`, quiet, leading a process group of its own (the
    sentinel and its workers stop together)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def url_of(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict["USER"]
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


# The workflow and its orders.


def workflow_definition(base_url: str, steps: int = STEPS) -> dict:
    """`steps` call steps, each rendering a body from the order and saving from the response."""
    api_calls = {
        f"step{i}": {
            "slug": f"step{i}",
            "name": f"Step {i}",
            "method": "POST",
            "url": f"{base_url}/step{i}",
            "body": {"order": "{{ order.order_id }}", "sku": "{{ input.sku }}", "step": i},
            "save": {f"ref{i}": "{{ response.body.ref }}"},
        }
        for i in range(1, steps + 1)
    }
    blueprint_steps = [{"id": f"s{i}", "call": f"step{i}"} for i in range(1, steps + 1)]
    blueprint = {"slug": "bench", "name": "Bench", "steps": blueprint_steps}
    return {"blueprint": blueprint, "api_calls": api_calls}


def create_orders(
    count: int, base_url: str, *, prefix: str = "bench", steps: int = STEPS, **fields
) -> None:
    """`count` orders of a `steps`-call workflow, pending at its first step unless `fields`
    set other columns (the same on every order)."""
    from blueprints.models import WorkflowSnapshot
    from orders.models import Order

    snapshot = WorkflowSnapshot.objects.create(
        workflow="bench",
        blueprint_version=1,
        digest=f"bench-{time.time_ns()}",
        definition=workflow_definition(base_url, steps),
    )
    Order.objects.bulk_create(
        (
            Order(
                order_id=f"{prefix}-{i}",
                workflow="bench",
                snapshot=snapshot,
                payload={"sku": f"SKU-{i % 97}", "qty": 1 + i % 5},
                current_step="s1",
                **fields,
            )
            for i in range(count)
        ),
        batch_size=1000,
    )


def drain_seconds(count: int, label: str, *, timeout: float = 600) -> float:
    """Seconds from now until `count` orders have completed."""
    from orders.models import Order

    started = time.perf_counter()
    while Order.objects.filter(status="completed").count() < count:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"{label}: not done after {timeout:g} s")
        time.sleep(0.05)
    return time.perf_counter() - started


def every_call_once(server: LatencyServer, orders: int, label: str) -> dict:
    """The server's stats, once it saw each of the orders' calls exactly once."""
    stats = server.stats()
    if stats["requests"] != orders * STEPS or stats["max_per_key"] != 1:
        raise SystemExit(f"{label}: the server saw {stats}")
    return stats


# The latency server, in a process of its own so its CPU is not counted.


class LatencyServer:
    """Answers every POST after `latency` seconds; GET /stats tells what it received. With
    `record_times`, GET /times gives each call's (arrival, finish) on the monotonic clock."""

    def __init__(self, latency: float, *, record_times: bool = False):
        self.latency = latency
        context = multiprocessing.get_context("spawn")
        self.ready = context.Queue()
        self.process = context.Process(
            target=_serve, args=(latency, self.ready, record_times), daemon=True
        )

    def __enter__(self) -> LatencyServer:
        self.process.start()
        self.port = self.ready.get(timeout=30)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        self.process.join(10)

    def stats(self) -> dict:
        import requests

        return requests.get(f"{self.url}/stats", timeout=10).json()

    def times(self) -> list[tuple[float, float]]:
        import requests

        return [tuple(pair) for pair in requests.get(f"{self.url}/times", timeout=60).json()]

    def reset(self) -> None:
        import requests

        requests.post(f"{self.url}/reset", timeout=10)


def _serve(latency: float, ready, record_times: bool = False) -> None:
    keys: Counter = Counter()
    times: list[tuple[float, float]] = []
    state = {"in_flight": 0, "max_in_flight": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True  # else each reply waits ~40 ms on a delayed ACK

        def log_message(self, *args) -> None:
            pass

        def reply(self, body: dict | list) -> None:
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            with lock:
                if self.path == "/times":
                    self.reply(times)
                    return
                self.reply(
                    {
                        "requests": sum(keys.values()),
                        "keys": len(keys),
                        "max_per_key": max(keys.values(), default=0),
                        "max_in_flight": state["max_in_flight"],
                    }
                )

        def do_POST(self) -> None:
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path == "/reset":
                with lock:
                    keys.clear()
                    times.clear()
                    state["max_in_flight"] = 0
                self.reply({})
                return
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                keys[key] += 1
                state["in_flight"] += 1
                state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
            time.sleep(latency)
            with lock:
                state["in_flight"] -= 1
                if record_times:
                    times.append((arrived, time.monotonic()))
            self.reply({"ok": True, "ref": key[:8]})

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # a burst of new connections must not wait on SYN retries

        def handle_error(self, request, client_address) -> None:
            pass  # a client killed mid-request (a benchmark stopping its workers) is no news

    httpd = Server(("127.0.0.1", 0), Handler)
    ready.put(httpd.server_address[1])
    httpd.serve_forever()
