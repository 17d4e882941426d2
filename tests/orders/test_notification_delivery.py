"""How status notifications are delivered (contract section 9): once per event after a
2xx and each order's events in order, however many deliverers run at once; every post
within its deadline, and one slow or dead receiver delaying no other receiver."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import pytest
from django.db import connections

from orders import notifications
from orders.alerts import AlertNotSent, send_test_alert
from orders.models import AlertRule
from orders.notifications import post_json
from tests.orders.test_notifications import SECRET
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)

# Short deadlines, so that a test waits seconds for what takes ten in production.
DEADLINE = 1.5


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, notify_secret=SECRET)


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(notifications, "POST_DEADLINE_SECONDS", DEADLINE, raising=False)


class SilentServer:
    """A receiver on 127.0.0.1 that reads the request and then never answers (`drip=0`),
    or sends its answer one byte every `drip` seconds, never finishing it."""

    def __init__(self, drip: float = 0.0) -> None:
        self.drip = drip
        self.stopped = threading.Event()
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.requests += 1
            answer = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"x" * 100000
            for byte in answer:
                if self.stopped.wait(self.drip or 3600):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def hanging():
    local = SilentServer()
    yield local
    local.stop()


@pytest.fixture
def dripping():
    local = SilentServer(drip=1.0)
    yield local
    local.stop()


def in_thread(call, timeout: float) -> list:
    """`call()`'s result (or the exception it raised) in a list, empty when it had not
    returned after `timeout` seconds (it goes on in the background)."""
    outcome = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome


@pytest.mark.parametrize("silent", ["hanging", "dripping"])
def test_a_post_gets_no_longer_than_its_deadline(silent, request, short_deadline):
    url = request.getfixturevalue(silent).url
    started = time.monotonic()

    outcome = in_thread(lambda: post_json(url, b"{}", headers={}, allow=["127.0.0.1"]), 15)

    assert time.monotonic() - started < DEADLINE + 0.5
    (result,) = outcome
    assert not result.ok and result.status is None and not result.refused
    assert "within 1.5s" in result.error


def test_a_webhook_alert_that_gets_no_answer_fails_at_the_deadline(dripping, short_deadline):
    alerting = AlertRule.objects.create(
        name="stuck webhook",
        threshold=1,
        window_minutes=15,
        channel=AlertRule.Channel.WEBHOOK,
        webhook_url=f"{dripping.url}/hooks/T0K3N",
    )
    started = time.monotonic()

    outcome = in_thread(lambda: send_test_alert(alerting), DEADLINE + 3)

    assert time.monotonic() - started < DEADLINE + 0.5
    (raised,) = outcome
    assert isinstance(raised, AlertNotSent)
    assert "within 1.5s" in str(raised) and "T0K3N" not in str(raised)
