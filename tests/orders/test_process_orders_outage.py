"""The process_orders loop outlives a database outage: it logs, backs off and goes on."""

import re
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.db import connection

from orders.models import Order
from tests.localserver import Reply
from tests.orders.test_batch import ROOT, stop, two_step_orders, wait_until, worker_env
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "not-for-the-log-8d1f"


def start_worker(tmp_path, database_url: str) -> subprocess.Popen:
    """`process_orders` in a loop of one-second intervals, its log in tmp_path/worker.log."""
    env = worker_env(STATE_MANAGER_INTERVAL_SECONDS=1, DATABASE_URL=database_url)
    with open(tmp_path / "worker.out", "w") as out, open(tmp_path / "worker.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "process_orders"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=log,
        )


def failed_tries(tmp_path) -> list[str]:
    log = (tmp_path / "worker.log").read_text()
    return re.findall(r"database unavailable .*; next try in (\S+)s", log)


def test_the_loop_waits_with_backoff_while_the_database_is_unreachable_and_stops_on_sigterm(
    tmp_path,
):
    unreachable = f"sqlite:///{tmp_path / 'no-such-directory' / 'db.sqlite3'}"
    worker = start_worker(tmp_path, unreachable)
    try:
        assert wait_until(lambda: len(failed_tries(tmp_path)) >= 3, 20), (
            tmp_path / "worker.log"
        ).read_text()
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)  # during the 4 s wait after the third try
        stopped_at = time.monotonic()
        assert worker.wait(timeout=5) == 0
        assert time.monotonic() - stopped_at < 2
    finally:
        stop(worker)

    assert failed_tries(tmp_path)[:3] == ["1", "2", "4"]
    log = (tmp_path / "worker.log").read_text()
    assert "unable to open database file" in log
    assert "Traceback" not in log
    assert (tmp_path / "worker.out").read_text().splitlines()[-1] == "Stopped."


@pytest.mark.postgres
def test_the_loop_goes_on_when_the_database_connection_comes_back(server, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("cuts a TCP connection to PostgreSQL (run with DATABASE_URL=postgres://...)")
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    settings_dict = connection.settings_dict
    proxy = TcpProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432))
    through_proxy = (
        f"postgres://{settings_dict['USER']}:{quote(settings_dict['PASSWORD'] or PASSWORD)}"
        f"@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"
    )
    worker = start_worker(tmp_path, through_proxy)
    try:
        two_step_orders(server, 1, prefix="before")
        assert wait_until(lambda: Order.objects.filter(status="completed").count() == 1, 30)

        proxy.cut()  # the worker's connection drops, and new ones are refused
        assert wait_until(lambda: len(failed_tries(tmp_path)) >= 2, 20)
        two_step_orders(server, 1, prefix="during")
        time.sleep(1)
        assert worker.poll() is None
        proxy.restore()

        assert wait_until(lambda: Order.objects.filter(status="completed").count() == 2, 30), (
            tmp_path / "worker.log"
        ).read_text()
        assert worker.poll() is None
    finally:
        stop(worker)
        proxy.close()

    assert Order.objects.get(order_id="during-0").status == Order.Status.COMPLETED
    log = (tmp_path / "worker.log").read_text()
    assert "database available again after" in log
    assert "Traceback" not in log
    assert PASSWORD not in log
