"""Signed status notifications (contract section 9): each status change of an order whose
blueprint names a `notify_url` is recorded with the change, posted there signed, retried
until a 2xx, and listed at GET /api/orders/{id}/events/."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from blueprints.models import WorkflowSnapshot
from orders.bulk_rows import insert_events
from orders.claims import claim_due_orders
from orders.engine.runner import advance_order
from orders.models import Order, OrderEvent
from orders.notifications import deliver_due_events
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-for-tests"
BODY_KEYS = {
    "id",
    "type",
    "order_id",
    "workflow",
    "status",
    "previous_status",
    "step",
    "error",
    "occurred_at",
}


class Receiver:
    """A frontend's endpoint on 127.0.0.1 that keeps each request's raw body (the signature
    covers the bytes as sent) and answers with the next status of `answers` (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((self.path, dict(self.headers), raw))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def bodies(self) -> list[dict]:
        return [json.loads(raw) for _, _, raw in self.received]


@pytest.fixture
def receiver():
    local = Receiver()
    yield local
    local.httpd.shutdown()
    local.httpd.server_close()


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, notify_secret=SECRET)


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """The recipe of docs/api.md (Status notifications), as a receiver would write it."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    recent = abs(time.time() - timestamp) <= tolerance
    return recent and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def notifying_order(server, receiver, *, partner: int = 200, order_id: str = "N-1") -> Order:
    """An order of one call step whose blueprint posts its status changes to `receiver`,
    at a URL rendered from the order and its input."""
    server.route("POST", "/charge", Reply(partner, {"ok": True}))
    steps = [{"id": "charge", "call": "charge", "end": "completed"}]
    order = make_order(steps, [api_call("charge", f"{server.url}/charge")], order_id=order_id)
    definition = order.snapshot.definition
    notify_url = f"{receiver.url}/hooks/{{{{ input.shop }}}}/{{{{ order.order_id }}}}"
    definition["blueprint"]["notify_url"] = notify_url
    snapshot = WorkflowSnapshot.objects.create(
        digest=f"notify-{order_id}",
        workflow="flow",
        blueprint_version=1,
        definition=definition,
    )
    Order.objects.filter(pk=order.pk).update(snapshot=snapshot, payload={"shop": "north"})
    order.refresh_from_db()
    return order


def changes(order: Order) -> list[tuple[str, str]]:
    return list(order.events.order_by("id").values_list("previous_status", "status"))


def test_an_order_posts_its_status_changes_in_order_signed(server, receiver):
    order = notifying_order(server, receiver)

    assert process(order).status == "completed"
    assert deliver_due_events() == 2

    assert [path for path, _, _ in receiver.received] == ["/hooks/north/N-1"] * 2
    first, last = receiver.bodies()
    assert set(first) == BODY_KEYS
    assert (first["previous_status"], first["status"]) == ("pending", "running")
    assert (last["previous_status"], last["status"], last["step"]) == (
        "running",
        "completed",
        "charge",
    )
    assert (last["type"], last["order_id"], last["workflow"]) == (
        "order.status_changed",
        "N-1",
        "flow",
    )
    for (_, headers, raw), body in zip(receiver.received, receiver.bodies(), strict=True):
        assert headers["X-StateManager-Event-Id"] == body["id"]
        assert headers["Content-Type"] == "application/json"
        assert verify(SECRET, headers["X-StateManager-Signature"], raw)
        assert not verify("another secret", headers["X-StateManager-Signature"], raw)
    assert set(order.events.values_list("state", flat=True)) == {"delivered"}


def test_a_refused_delivery_is_retried_with_the_same_event_id_and_holds_the_next(server, receiver):
    order = notifying_order(server, receiver)
    process(order)
    receiver.answers = [500]

    assert deliver_due_events() == 0
    first = order.events.order_by("id").first()
    assert (first.state, first.attempts, first.last_status) == ("pending", 1, 500)
    assert first.next_attempt_at > timezone.now()
    assert len(receiver.received) == 1  # the next event waits for this one

    assert deliver_due_events(now=first.next_attempt_at + timedelta(seconds=1)) == 2

    ids = [headers["X-StateManager-Event-Id"] for _, headers, _ in receiver.received]
    assert ids[0] == ids[1] == str(first.event_id)
    assert [body["status"] for body in receiver.bodies()] == ["running", "running", "completed"]


def test_the_outbound_allowlist_holds_for_notifications(server, receiver, settings):
    order = notifying_order(server, receiver)
    process(order)
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, outbound_allow=[])

    deliver_due_events()

    assert receiver.received == []
    event = order.events.order_by("id").first()
    assert event.state == "failed"
    assert "127.0.0.1" in event.last_error


def test_without_a_secret_nothing_is_sent_and_the_events_say_why(server, receiver, settings):
    order = notifying_order(server, receiver)
    process(order)
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, notify_secret="")

    assert deliver_due_events() == 0

    assert receiver.received == []
    assert set(order.events.values_list("state", "last_error")) == {
        ("pending", "not sent: STATE_MANAGER_NOTIFY_SECRET is not set")
    }


def test_reprocess_and_cancel_record_their_changes(server, receiver, support):
    order = notifying_order(server, receiver, partner=500)
    assert process(order).status == "failed"

    assert support.post("/api/orders/N-1/reprocess/", {}, format="json").status_code == 202
    assert support.post("/api/orders/N-1/cancel/").status_code == 202

    assert changes(order) == [
        ("pending", "running"),
        ("running", "failed"),
        ("failed", "pending"),
        ("pending", "cancelled"),
    ]
    failed, reprocessed = order.events.order_by("id")[1:3]
    assert (failed.step, failed.error) == ("charge", 'step "charge": HTTP 500')
    assert (reprocessed.step, reprocessed.error) == ("charge", "")


def test_a_retry_that_waits_and_its_next_turn_are_status_changes(server, receiver):
    order = notifying_order(server, receiver)
    server.route("POST", "/charge", Reply(503, {}, headers={"Retry-After": "600"}))
    snapshot = order.snapshot
    snapshot.definition["api_calls"]["charge"]["retry"] = {"max_attempts": 2}
    snapshot.save()

    assert process(order).status == "waiting"
    Order.objects.filter(pk=order.pk).update(due_at=timezone.now())
    server.route("POST", "/charge", Reply(200, {}))
    assert process(order).status == "completed"

    assert changes(order) == [
        ("pending", "running"),
        ("running", "waiting"),
        ("waiting", "running"),
        ("running", "completed"),
    ]


def test_an_order_without_notify_url_records_nothing_and_writes_no_more(server):
    server.route("POST", "/charge", Reply(200, {}))
    steps = [{"id": "charge", "call": "charge", "end": "completed"}]
    order = make_order(steps, [api_call("charge", f"{server.url}/charge")])
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)

    with CaptureQueriesContext(connection) as queries:
        assert advance_order(claim.order_pk, claim.token) == "completed"

    assert not any(OrderEvent._meta.db_table in query["sql"] for query in queries)
    assert not OrderEvent.objects.filter(order=order).exists()


def test_the_events_endpoint_lists_an_orders_events_oldest_first(
    server, receiver, support, anonymous
):
    order = notifying_order(server, receiver)
    process(order)
    receiver.answers = [500]
    deliver_due_events()

    response = support.get("/api/orders/N-1/events/")

    assert response.status_code == 200
    first, last = response.json()
    assert set(first) == BODY_KEYS | {"delivery"}
    assert [first["status"], last["status"]] == ["running", "completed"]
    assert first["delivery"]["state"] == "pending"
    assert (first["delivery"]["attempts"], first["delivery"]["last_status"]) == (1, 500)
    assert first["delivery"]["url"] == f"{receiver.url}/hooks/north/N-1"
    assert last["delivery"]["attempts"] == 0
    assert anonymous.get("/api/orders/N-1/events/").status_code == 401
    assert support.get("/api/orders/nope/events/").status_code == 404


def test_a_notify_url_may_read_input_and_order_only(editor, shop):
    blueprint = {
        "slug": "shop2",
        "name": "Shop 2",
        "notify_url": "http://frontend.example/{{ data.total }}",
        "steps": [{"id": "charge", "call": "shop.charge", "end": "completed"}],
    }

    response = editor.post("/api/blueprints/", blueprint, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith('notify_url: "http://frontend.example/')
    assert '"data" is not available here; use input, order' in response.json()["errors"][0]


def test_each_frontend_may_name_its_own_notify_url_in_the_order(editor, shop, server, receiver):
    blueprint = {
        "slug": "shop3",
        "name": "Shop 3",
        "notify_url": "{{ input.notify_url }}",
        "steps": [{"id": "charge", "call": "shop.charge", "end": "completed"}],
    }
    assert editor.post("/api/blueprints/", blueprint, format="json").status_code == 201

    order = notifying_order(server, receiver)
    definition = order.snapshot.definition
    definition["blueprint"]["notify_url"] = "{{ input.notify_url }}"
    WorkflowSnapshot.objects.filter(pk=order.snapshot_id).update(definition=definition)
    Order.objects.filter(pk=order.pk).update(payload={"notify_url": f"{receiver.url}/mine"})

    assert process(order).status == "completed"
    assert deliver_due_events() == 2
    assert [path for path, _, _ in receiver.received] == ["/mine"] * 2


def test_the_events_recorded_for_a_change_are_those_of_the_orders_that_notify(server, receiver):
    notifying = notifying_order(server, receiver, order_id="N-2")
    silent = make_order([{"id": "charge", "call": "charge"}], [api_call("charge", server.url)])
    Order.objects.filter(pk__in=[notifying.pk, silent.pk]).update(status=Order.Status.FAILED)

    with transaction.atomic():
        events = insert_events(
            [notifying.pk, silent.pk], now=timezone.now(), status=Order.Status.PENDING
        )

    assert events == list(notifying.events.values_list("event_id", flat=True))
    assert len(events) == 1 and not silent.events.exists()
