"""Webhook intake: new orders a second through gunicorn, their latency and SQL statements.

gunicorn starts with the shipped `gunicorn.conf.py` on a scratch database (a temporary
SQLite file, or `<name>_webhook` beside the PostgreSQL database `DATABASE_URL` names),
with the environment as it is (`REDIS_URL`, `DATABASE_CONN_MAX_AGE`). The bench makes a
3-step blueprint with an input schema and one integration user with a token per client
(a sender each, under the default rate limit), then `--clients` threads, each on its own
keep-alive connection, post new orders without pause: `--warmup` seconds not counted,
then `--seconds` counted. It prints orders a second, latency percentiles, the CPU the
gunicorn workers and the client took per order, how busy the machine was, and the SQL
statements of one new and one replayed order (counted once in a separate process, with
the same code as the server, by Django's CaptureQueriesContext).

    .venv/bin/python -m bench.webhook [--seconds 20] [--warmup 3] [--clients 16]
        [--workers 2] [--threads 4] [--app-dir DIR]

`--app-dir` serves (and counts the statements of) another checkout of the project, e.g.
`git worktree add /tmp/sm_before HEAD~1`, with this one's gunicorn config and client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, machine, scratch_database, workflow_definition

URL = "/api/orders/"
# Run in the served checkout, so the statements counted are those of the code measured.
COUNT_STATEMENTS = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statemanager.settings")
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Token " + os.environ["BENCH_TOKEN"])

def count(order_id):
    body = {"order_id": order_id, "workflow": "bench",
            "payload": {"sku": "SKU-1", "qty": 2, "email": "ann@example.com"}}
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/orders/", body, format="json")
    return response.status_code, len(queries)

first = count("count-1")
new = count("count-2")
replay = count("count-2")
json.dump({"first": first, "new": new, "replay": replay}, sys.stdout)
"""
INPUT_SCHEMA = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "qty": {"type": "integer", "minimum": 1},
        "email": {"type": "string"},
    },
}


def setup_definitions(clients: int) -> list[str]:
    """The bench workflow and one integration token per client."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from apicalls.services import api_call_save
    from blueprints.services import blueprint_save

    definition = workflow_definition("http://127.0.0.1:9")
    for api_call in definition["api_calls"].values():
        api_call_save(definition=api_call)
    blueprint_save(definition={**definition["blueprint"], "input_schema": INPUT_SCHEMA})
    group = Group.objects.get(name="Integrations")
    keys = []
    for index in range(clients + 1):
        user = User.objects.create_user(username=f"sender-{index}")
        user.groups.add(group)
        keys.append(Token.objects.create(user=user).key)
    return keys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn with the shipped config, serving `app_dir` on a free port."""

    def __init__(self, database_url: str, *, app_dir: Path, workers: int, threads: int):
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "WEB_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "WEB_THREADS": str(threads),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("WEB_ACCESS_LOG", None)
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--chdir",
            str(app_dir),
            "statemanager.wsgi",
        ]
        self.env = env

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(self.command, env=self.env)
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/health/")
                if connection.getresponse().status == 200:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def workers_cpu(self) -> float:
        """CPU seconds the worker processes have used so far."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sum(process_cpu(int(pid)) for pid in path.read_text().split())


def database_cpu() -> dict[str, float]:
    """CPU seconds used so far by each PostgreSQL server process of the scratch database
    (this one's own aside), when the server runs on this machine. Counted in the window
    only when the web processes keep their connections (DATABASE_CONN_MAX_AGE): else
    each request's server process has ended before the window does."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in cursor.fetchall()]
    return {f"postgres {pid}": process_cpu(pid) for pid in pids}


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs so far."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])
    return total - values[3] - values[4], total


class Load:
    """`clients` threads posting new orders; only requests started in the window count."""

    def __init__(self, port: int, keys: list[str], *, clients: int):
        self.port = port
        self.keys = keys
        self.clients = clients
        self.window = (float("inf"), float("inf"))
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.created = 0  # every 201, counted or not
        self.lock = threading.Lock()

    def run(self, *, warmup: float, seconds: float, cpu: Callable[[], dict[str, float]]) -> None:
        """`cpu()` tells the CPU seconds used so far by the server's parts; `self.cpu` is
        what each used in the counted window."""
        threads = [
            threading.Thread(target=self.client, args=(index,)) for index in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(warmup)
        start = time.perf_counter()
        self.window = (start, start + seconds)
        busy, client, before = machine_busy(), time.process_time(), cpu()
        time.sleep(seconds)
        after = cpu()
        self.busy = [last - first for first, last in zip(busy, machine_busy(), strict=True)]
        self.client_cpu = time.process_time() - client
        self.cpu = {name: after[name] - before.get(name, 0.0) for name in after}
        self.stop.set()
        for thread in threads:
            thread.join()

    def client(self, index: int) -> None:
        headers = {"Authorization": f"Token {self.keys[index]}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        latencies, statuses, created, number = [], {}, 0, 0
        while not self.stop.is_set():
            number += 1
            body = json.dumps(
                {
                    "order_id": f"bench-{index}-{number}",
                    "workflow": "bench",
                    "payload": {"sku": f"SKU-{number % 97}", "qty": 1 + number % 5},
                }
            )
            started = time.perf_counter()
            try:
                connection.request("POST", URL, body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                status = 0
            elapsed = time.perf_counter() - started
            created += status == 201
            if self.window[0] <= started < self.window[1]:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
        connection.close()
        with self.lock:
            self.latencies += latencies
            self.created += created
            for status, count in statuses.items():
                self.statuses[status] = self.statuses.get(status, 0) + count


def count_statements(app_dir: Path, database_url: str, key: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "BENCH_TOKEN": key, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-c", COUNT_STATEMENTS]
    done = subprocess.run(command, cwd=app_dir, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"counting the statements failed:\n{done.stderr}")
    return json.loads(done.stdout)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--app-dir", type=Path, default=ROOT)
    args = parser.parse_args()
    app_dir = args.app_dir.resolve()
    load_average = os.getloadavg()[0]  # before this bench added its own

    with scratch_database(os.environ.get("DATABASE_URL"), suffix="webhook") as url:
        from django.db import connection

        from orders.models import Order

        keys = setup_definitions(args.clients)
        statements = count_statements(app_dir, url, keys[-1])
        connection.close()
        with Gunicorn(url, app_dir=app_dir, workers=args.workers, threads=args.threads) as server:
            load = Load(server.port, keys, clients=args.clients)
            load.run(
                warmup=args.warmup,
                seconds=args.seconds,
                cpu=lambda: {"server": server.workers_cpu(), **database_cpu()},
            )
        stored = Order.objects.filter(order_id__startswith="bench-").count()
        if stored != load.created:
            raise SystemExit(f"{load.created} orders were answered 201 but {stored} are stored")

        created = load.statuses.get(201, 0)
        others = {status: n for status, n in sorted(load.statuses.items()) if status != 201}
        print(f"machine: {machine()}")
        print(
            f"database: {connection.vendor} (scratch: {url.rsplit('/', 1)[-1]}), "
            f"DATABASE_CONN_MAX_AGE={os.environ.get('DATABASE_CONN_MAX_AGE', '0')}, "
            f"REDIS_URL {'set' if os.environ.get('REDIS_URL') else 'unset'}"
        )
        print(
            f"server: gunicorn -c gunicorn.conf.py, {args.workers} workers x {args.threads} "
            f"threads, serving {app_dir}"
        )
        print(
            f"load: {args.clients} clients on keep-alive connections, {args.seconds:g} s "
            f"counted after {args.warmup:g} s"
        )
        print(f"orders/s        {created / args.seconds:8.1f}  ({created} created)")
        if load.latencies:
            print(
                f"latency ms      p50 {percentile(load.latencies, 0.5) * 1000:.1f}  "
                f"p99 {percentile(load.latencies, 0.99) * 1000:.1f}  "
                f"max {max(load.latencies) * 1000:.1f}"
            )
        if others:
            print(f"other answers   {others}")
        per_order = max(created, 1)
        print(
            f"server CPU      {load.cpu['server'] * 1000 / per_order:8.2f} ms/order "
            "(gunicorn workers)"
        )
        database = sum(value for name, value in load.cpu.items() if name != "server")
        if database and os.environ.get("DATABASE_CONN_MAX_AGE", "0") != "0":
            print(
                f"database CPU    {database * 1000 / per_order:8.2f} ms/order "
                "(its PostgreSQL server processes, when on this machine)"
            )
        print(f"client CPU      {load.client_cpu * 1000 / per_order:8.2f} ms/order")
        busy, total = load.busy
        print(
            f"machine busy    {busy / max(total, 1):8.0%}  (all CPUs, every process; other "
            f"work: load average {load_average:.1f} before the bench started)"
        )
        print(
            "SQL statements  "
            + ", ".join(
                f"{name} {statements[name][1]} ({statements[name][0]})"
                for name in ("first", "new", "replay")
            )
            + "  (order: count (HTTP status))"
        )


if __name__ == "__main__":
    main()
