"""OpenTelemetry (contract §12): one trace from the webhook's `traceparent` through each
turn of the order to each attempt, and the partner's API receives it. Off, nothing."""

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from core import tracing
from orders.batch import run_batch
from orders.models import Order
from tests.localserver import Reply
from tests.orders.test_batch import ROOT, worker_env
from tests.statemanager.fixtures import token_client, user_in

pytestmark = pytest.mark.django_db(transaction=True)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


@pytest.fixture
def pay(server):
    """A blueprint `pay`: one call to the local API, answered 503 once, then 200."""
    answers = iter([Reply(503, headers={"Retry-After": "0"})])
    server.route("POST", "/pay", lambda _request: next(answers, Reply(200)))
    retry = {"max_attempts": 2, "backoff_seconds": 0.1}
    url = server.url + "/pay"
    api_call_save(
        definition={"slug": "pay", "name": "Pay", "method": "POST", "url": url, "retry": retry}
    )
    blueprint_save(
        definition={"slug": "pay", "name": "Pay", "steps": [{"id": "charge", "call": "pay"}]}
    )
    return server


def post_order(order_id: str, **headers):
    client = token_client(user_in("Integrations"))
    body = {"order_id": order_id, "workflow": "pay", "payload": {}}
    response = client.post("/api/orders/", body, format="json", headers=headers)
    assert response.status_code == 201, response.content


def test_one_trace_from_the_webhooks_traceparent_through_a_turn_to_each_attempt(spans, pay):
    post_order("t-1", traceparent=INCOMING)

    run_batch()

    assert Order.objects.get(order_id="t-1").status == "completed"
    by_name = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    [webhook], [turn] = by_name["webhook"], by_name["order turn"]
    attempts = by_name["attempt"]
    assert len(attempts) == 2  # the 503, retried at once, then the 200
    everyone = [webhook, turn, *attempts]
    assert {format(span.context.trace_id, "032x") for span in everyone} == {TRACE_ID}
    assert format(webhook.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert turn.parent.span_id == webhook.context.span_id
    assert all(attempt.parent.span_id == turn.context.span_id for attempt in attempts)
    assert webhook.attributes["order.id"] == "t-1"
    assert dict(turn.attributes) == {
        "order.id": "t-1",
        "order.workflow": "pay",
        "order.step": "charge",
        "order.status": "completed",
    }
    first, second = sorted(attempts, key=lambda span: span.start_time)
    assert (first.attributes["order.attempt"], second.attributes["order.attempt"]) == (1, 2)
    assert first.attributes["http.response.status_code"] == 503
    assert second.attributes["server.address"] == "127.0.0.1"
    assert second.attributes["order.step"] == "charge"
    # The API received each attempt's own span as its parent, in the same trace.
    sent = [request.headers["traceparent"] for request in pay.received]
    assert sent == [
        f"00-{TRACE_ID}-{format(span.context.span_id, '016x')}-01" for span in (first, second)
    ]


def test_the_trace_continues_in_a_later_batch(spans, pay):
    """A turn that waits (a retry later) and the next turn are both in the webhook's trace."""
    answers = iter([Reply(503, headers={"Retry-After": "60"})])  # longer than an inline wait
    pay.route("POST", "/pay", lambda _request: next(answers, Reply(200)))
    post_order("t-2", traceparent=INCOMING)

    run_batch()
    order = Order.objects.get(order_id="t-2")
    assert order.status == "waiting"
    Order.objects.filter(pk=order.pk).update(due_at=order.created_at)  # due now
    run_batch()

    assert Order.objects.get(pk=order.pk).status == "completed"
    finished = spans.get_finished_spans()
    [webhook] = [span for span in finished if span.name == "webhook"]
    turns = [span for span in finished if span.name == "order turn"]
    assert [turn.attributes["order.status"] for turn in turns] == ["waiting", "completed"]
    assert all(turn.parent.span_id == webhook.context.span_id for turn in turns)
    assert {format(span.context.trace_id, "032x") for span in finished} == {TRACE_ID}


def test_tracing_off_sends_no_traceparent_and_keeps_the_webhooks(pay):
    assert not tracing.enabled()
    post_order("t-3", traceparent=INCOMING)

    run_batch()

    assert all("traceparent" not in request.headers for request in pay.received)
    assert Order.objects.get(order_id="t-3").trace_parent == INCOMING


def test_a_worker_with_the_otlp_endpoint_set_exports_its_spans_over_otlp_http(pay):
    """The deployed set-up: `configure` at start-up, the OTLP/HTTP exporter, the export."""
    pay.route("POST", "/v1/traces", lambda _request: Reply(200, body=b""))
    post_order("t-4", traceparent=INCOMING)  # tracing is off in this process: kept as sent

    run = subprocess.run(
        [sys.executable, "manage.py", "process_orders", "--once"],
        cwd=ROOT,
        env=worker_env(OTEL_EXPORTER_OTLP_ENDPOINT=pay.url),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert Order.objects.get(order_id="t-4").status == "completed"
    calls = [request for request in pay.received if request.path == "/pay"]
    assert all(request.headers["traceparent"].split("-")[1] == TRACE_ID for request in calls)
    exports = [request for request in pay.received if request.path == "/v1/traces"]
    assert exports
    headers = {name.lower(): value for name, value in exports[0].headers.items()}
    assert headers["content-type"] == "application/x-protobuf"
    assert bytes.fromhex(TRACE_ID) in b"".join(request.raw for request in exports)
