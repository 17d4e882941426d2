"""The cadence of whatever drives the orders, here the `process_orders` loop in a process
of its own: a new order starts at once, not at the interval, and its status
notifications are posted as they happen, by the loop itself."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders.models import OrderEvent
from orders.services import order_create
from tests.orders.test_batch import start_worker, stop, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "cadence-secret"


class Clocked:
    """A local HTTP server noting when (the wall clock) each POST to each path arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float, bytes]] = []
        clocked = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                clocked.arrivals.append((self.path, arrived, body))
                payload = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[tuple[float, bytes]]:
        return [(arrived, body) for to, arrived, body in self.arrivals if to == path]


@pytest.fixture
def clocked():
    local = Clocked()
    yield local
    local.httpd.shutdown()
    local.httpd.server_close()


def test_the_loop_starts_a_new_order_at_once_and_posts_its_notifications_within_a_second(
    clocked,
):
    api_call_save(
        definition={
            "slug": "charge",
            "name": "Charge",
            "method": "POST",
            "url": clocked.url + "/charge",
        }
    )
    blueprint_save(
        definition={
            "slug": "shop",
            "name": "Shop",
            "steps": [{"id": "charge", "call": "charge"}],
            "notify_url": clocked.url + "/hooks",
        }
    )
    worker = start_worker(STATE_MANAGER_INTERVAL_SECONDS=3600, STATE_MANAGER_NOTIFY_SECRET=SECRET)
    try:
        time.sleep(3.0)  # the loop found nothing due: it rests, for an hour at most
        order, _ = order_create(order_id="N-1", workflow="shop", payload={})
        created = time.time()
        assert wait_until(lambda: len(clocked.to("/hooks")) == 2, 15), clocked.arrivals
    finally:
        stop(worker)

    order.refresh_from_db()
    assert order.status == "completed"
    ((first_call, _),) = clocked.to("/charge")
    assert first_call - created < 1.5  # a second of the loop's look at most, not an hour
    posted = {json.loads(body)["id"]: arrived for arrived, body in clocked.to("/hooks")}
    events = OrderEvent.objects.filter(order=order).order_by("id")
    assert [event.status for event in events] == ["running", "completed"]
    for event in events:
        assert posted[str(event.event_id)] - event.occurred_at.timestamp() < 1.5, event.status
