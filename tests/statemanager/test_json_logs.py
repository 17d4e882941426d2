"""LOG_FORMAT=json: every line one JSON object, with the order, step and attempt the
engine is working on, and the secrets masked as on every handler."""

import io
import json
import logging
import subprocess
import sys

import pytest

from core import logcontext
from orders.models import Order
from statemanager.logfilters import JsonLines, MaskSecrets
from tests.localserver import Reply
from tests.orders.test_batch import ROOT, worker_env
from tests.orders.workflows import api_call, make_order

SECRET = "s3cr3t-Json-77"


def test_a_json_line_masks_a_secret_and_carries_the_bound_fields(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_TOKEN", SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskSecrets())
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("tests.json_lines")
    logger.addHandler(handler)
    try:
        with logcontext.bound(order_id="shop-9", step="pay", attempt=2):
            logger.warning("sent %s", SECRET)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sent ***"
    assert (first["order_id"], first["step"], first["attempt"]) == ("shop-9", "pay", 2)
    assert first["level"] == "WARNING" and first["logger"] == "tests.json_lines"
    assert "order_id" not in second


@pytest.mark.django_db(transaction=True)
def test_a_worker_with_log_format_json_writes_json_lines_with_order_step_and_attempt(server):
    server.route("POST", "/pay", Reply(200))
    url = server.url + "/pay?key={{ secrets.TOKEN }}"
    order = make_order([{"id": "pay", "call": "pay"}], [api_call("pay", url)], order_id="j-1")

    run = subprocess.run(
        [sys.executable, "manage.py", "process_orders", "--once"],
        cwd=ROOT,
        env=worker_env(LOG_FORMAT="json", LOG_LEVEL="DEBUG", STATE_MANAGER_SECRET_TOKEN=SECRET),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr  # stdout: the command's own summary, not a log line
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert lines and all("message" in line and "level" in line for line in lines)
    attempt = [line for line in lines if line["message"].startswith("attempt succeeded")]
    assert len(attempt) == 1
    assert (attempt[0]["order_id"], attempt[0]["step"], attempt[0]["attempt"]) == ("j-1", "pay", 1)
    assert SECRET not in output and "key=***" in attempt[0]["message"]
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
