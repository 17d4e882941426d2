"""No process writes a secret to its log, in any form: every handler masks every record
(statemanager/logfilters.py), and the errors alerts and notifications store are masked
before they are stored or logged. Real `qcluster` and `runserver` processes, their output
searched for every form of the secret."""

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from orders.models import AlertRule, Order
from statemanager.logfilters import MaskSecrets
from tests.localserver import Reply
from tests.orders.engine.test_secret_escapes import (
    MIXED,
    PERCENT_LOWER,
    PERCENT_UPPER,
    SECRET,
    leaks,
)
from tests.orders.test_batch import ROOT, wait_until, worker_env
from tests.orders.workflows import api_call, make_order

pytestmark = pytest.mark.django_db(transaction=True)

# A webhook's token no environment variable names: hidden because it is the URL's path.
HOOK_TOKEN = "wh-t\u00f6k-7f3a"
HOOK_PATH = "wh-t%c3%b6k-7f3a"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(tmp_path, name: str, *args: str, **env) -> subprocess.Popen:
    """`manage.py <args>` on the test database in its own process group, at DEBUG level,
    with the secret in its environment; stdout and stderr in tmp_path/<name>.log."""
    environment = worker_env(STATE_MANAGER_SECRET_TOKEN=SECRET, LOG_LEVEL="DEBUG", **env)
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the sentinel and its workers stop together
        )


def stop_group(process: subprocess.Popen) -> None:
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, stop_signal)
            process.wait(timeout=15)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def hook_leaks(text: str) -> list[str]:
    return [form for form in (HOOK_TOKEN, HOOK_PATH, HOOK_PATH.upper()) if form in text]


def test_every_handler_of_every_logger_masks_secrets():
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        # pytest's capturing handlers are the test run's, not the project's.
        if not isinstance(handler, logging.NullHandler)
        and not type(handler).__module__.startswith("_pytest")
    }
    assert handlers
    unmasked = [h for h in handlers if not any(isinstance(f, MaskSecrets) for f in h.filters)]
    assert unmasked == []


def test_a_record_is_masked_in_its_message_arguments_and_traceback(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_TOKEN", SECRET)
    try:
        raise ValueError(f"refused {PERCENT_UPPER}")
    except ValueError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, "", 0, "got %s", (MIXED,), (type(exc), exc, None)
        )
    assert MaskSecrets().filter(record)
    text = logging.Formatter().format(record)
    assert "got ***" in text and "ValueError: refused ***" in text
    assert leaks(text) == []


def test_a_qcluster_and_its_workers_log_no_form_of_a_secret(server, tmp_path):
    server.route("POST", f"/pay/{PERCENT_UPPER}", Reply(500, {"error": "down"}))
    url = f"{server.url}/pay/{{{{ secrets.TOKEN }}}}?key={{{{ secrets.TOKEN }}}}"
    calls = [api_call("pay", url, headers={"X-Token": "{{ secrets.TOKEN }}"})]
    paying = make_order([{"id": "pay", "call": "pay"}], calls)
    failed = make_order([{"id": "x", "end": "failed"}])
    Order.objects.filter(pk=failed.pk).update(status="failed", finished_at=timezone.now())
    closed = free_port()
    alerting = AlertRule.objects.create(
        name="leaky hook",
        threshold=1,
        window_minutes=15,
        channel=AlertRule.Channel.WEBHOOK,
        webhook_url=f"http://127.0.0.1:{closed}/hooks/{HOOK_PATH}?token={PERCENT_LOWER}",
    )
    env = {"Q_WORKERS": 1, "REDIS_URL": settings.REDIS_URL or ""}
    cluster = start(tmp_path, "qcluster", "qcluster", **env)
    try:
        async_task("orders.batch.run_batch")
        async_task("orders.tasks.check_alerts")
        alerting_tried = lambda: AlertRule.objects.get(pk=alerting.pk).last_error != ""  # noqa: E731
        assert wait_until(alerting_tried, 60), (tmp_path / "qcluster.log").read_text()
        paid = lambda: Order.objects.get(pk=paying.pk).status == "failed"  # noqa: E731
        assert wait_until(paid, 60), (tmp_path / "qcluster.log").read_text()
        time.sleep(1)  # the worker's last lines written
    finally:
        stop_group(cluster)

    log = (tmp_path / "qcluster.log").read_text()
    assert 'alert rule "leaky hook": webhook alert not sent' in log
    assert f"/pay/{PERCENT_UPPER}".lower() not in log.lower() and "/pay/***" in log  # urllib3
    assert leaks(log) == [] and hook_leaks(log) == [], log
    last_error = AlertRule.objects.get(pk=alerting.pk).last_error
    assert last_error.startswith("webhook: ConnectionError") and "***" in last_error
    assert leaks(last_error) == [] and hook_leaks(last_error) == [], last_error


def test_runserver_logs_no_form_of_a_secret(tmp_path):
    port = free_port()
    web = start(tmp_path, "runserver", "runserver", f"127.0.0.1:{port}", "--noreload")
    try:
        assert wait_until(lambda: _answers(port), 30), (tmp_path / "runserver.log").read_text()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # Not found: Django logs the decoded path, runserver the request line as sent.
        connection.request("GET", f"/api/nothing/{PERCENT_LOWER}/?t={PERCENT_UPPER}&j={MIXED}")
        assert connection.getresponse().status == 404
        connection.close()
        time.sleep(1)
    finally:
        stop_group(web)

    log = (tmp_path / "runserver.log").read_text()
    assert "Not Found: /api/nothing/***/" in log and '"GET /api/nothing/***/?t=***&j=***' in log
    assert leaks(log) == [], log


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
