"""Retries, backoff, Retry-After, timeouts, refused connections and the idempotency key."""

import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

FAST_RETRY = {"max_attempts": 3, "backoff_seconds": 0.01, "backoff_rate": 2}


def flaky(*replies: Reply):
    """A handler answering with each reply in turn, then the last one forever."""
    queue = list(replies)

    def handler(_request):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def test_retry_until_success_keeps_the_idempotency_key(server):
    server.route("POST", "/charge", flaky(Reply(503), Reply(500), Reply(201, {"id": "ch"})))
    calls = [api_call("charge", server.url + "/charge", retry=FAST_RETRY)]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.COMPLETED
    keys = {request.headers["Idempotency-Key"] for request in server.requests_to("/charge")}
    assert len(server.requests_to("/charge")) == 3
    assert len(keys) == 1
    assert [(e.attempt, e.outcome) for e in attempts(order)] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "succeeded"),
    ]


def test_step_retry_overrides_the_api_call_retry(server):
    server.route("POST", "/charge", Reply(503))
    calls = [api_call("charge", server.url + "/charge", retry=FAST_RETRY)]
    steps = [{"id": "charge", "call": "charge", "retry": {"max_attempts": 2}}]
    steps[0]["retry"]["backoff_seconds"] = 0.01
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.FAILED
    assert len(server.requests_to("/charge")) == 2


def test_client_errors_are_not_retried(server):
    server.route("POST", "/charge", Reply(422, {"error": "bad"}))
    calls = [api_call("charge", server.url + "/charge", retry=FAST_RETRY)]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.FAILED
    assert len(server.requests_to("/charge")) == 1
    assert "422" in order.error


def test_too_many_requests_is_retried(server):
    server.route("POST", "/charge", flaky(Reply(429), Reply(200)))
    calls = [api_call("charge", server.url + "/charge", retry=FAST_RETRY)]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.COMPLETED
    assert len(server.requests_to("/charge")) == 2


def test_a_long_retry_after_releases_the_order_as_waiting_until_due(server):
    server.route("POST", "/charge", flaky(Reply(503, headers={"Retry-After": "120"}), Reply(200)))
    retry = {"max_attempts": 3, "backoff_seconds": 0.01, "max_backoff_seconds": 600}
    calls = [api_call("charge", server.url + "/charge", retry=retry)]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.WAITING
    assert order.attempt == 1
    assert order.claim_token is None
    wait = (order.due_at - timezone.now()).total_seconds()
    assert 115 < wait <= 132  # the Retry-After, plus up to a tenth of jitter

    assert process(order).status == Order.Status.WAITING  # not due yet: untouched
    assert len(server.requests_to("/charge")) == 1

    Order.objects.filter(pk=order.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    order = process(order)
    assert order.status == Order.Status.COMPLETED
    requests = server.requests_to("/charge")
    assert [e.attempt for e in attempts(order)] == [1, 2]
    assert requests[0].headers["Idempotency-Key"] == requests[1].headers["Idempotency-Key"]


def test_a_short_retry_after_is_waited_in_the_same_turn(server):
    server.route("POST", "/charge", flaky(Reply(429, headers={"Retry-After": "1"}), Reply(200)))
    calls = [api_call("charge", server.url + "/charge", retry=FAST_RETRY)]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.COMPLETED
    first, second = server.requests_to("/charge")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_a_timeout_is_a_failed_attempt_and_retried(server):
    import time

    def slow(_request):
        time.sleep(0.5)
        return Reply(200)

    server.route("POST", "/slow", slow)
    calls = [api_call("slow", server.url + "/slow", timeout_seconds=0.1, retry=FAST_RETRY)]
    order = process(make_order([{"id": "slow", "call": "slow"}], calls))

    assert order.status == Order.Status.FAILED
    assert [e.outcome for e in attempts(order)] == ["retrying", "retrying", "failed"]
    assert "timed out" in attempts(order)[-1].error


def test_a_refused_connection_is_a_failed_attempt():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    calls = [
        api_call(
            "gone", f"http://127.0.0.1:{port}/x", retry={"max_attempts": 2, "backoff_seconds": 0.01}
        )
    ]
    order = process(make_order([{"id": "gone", "call": "gone"}], calls))

    assert order.status == Order.Status.FAILED
    assert len(attempts(order)) == 2
    assert attempts(order)[-1].response["status"] is None


def test_outbound_allowlist_refuses_loopback_unless_listed(server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, outbound_allow=[])
    server.route("POST", "/a", Reply(200))
    order = process(make_order([{"id": "a", "call": "a"}], [api_call("a", server.url + "/a")]))

    assert order.status == Order.Status.FAILED
    assert "STATE_MANAGER_OUTBOUND_ALLOW" in order.error
    assert server.received == []


def test_idempotency_keys_differ_between_steps_and_orders(server):
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(200))
    calls = [api_call("a", server.url + "/a"), api_call("b", server.url + "/b")]
    steps = [{"id": "a", "call": "a"}, {"id": "b", "call": "b"}]
    process(make_order(steps, calls))
    process(make_order(steps, calls))

    keys = [request.headers["Idempotency-Key"] for request in server.received]
    assert len(keys) == 4
    assert len(set(keys)) == 4


def test_the_timeout_bounds_the_whole_response_not_each_read():
    """A server sending its body a byte at a time never pauses long enough for a read
    timeout; the call's timeout is still the most it may take."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def drip():
        client, _ = listener.accept()
        client.recv(65536)
        client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n")
        try:
            for _ in range(20):
                time.sleep(0.2)
                client.sendall(b"x")
        except OSError:
            pass  # the engine hung up at its deadline, as it should
        finally:
            client.close()

    threading.Thread(target=drip, daemon=True).start()
    port = listener.getsockname()[1]
    calls = [api_call("slow", f"http://127.0.0.1:{port}/", timeout_seconds=1)]
    order = process(make_order([{"id": "slow", "call": "slow"}], calls))
    listener.close()

    assert order.status == Order.Status.FAILED
    assert "timed out after 1s" in attempts(order)[0].error
    assert attempts(order)[0].duration_ms < 2000


def raw_server(reply: bytes, *, then_sleep: float = 0.0) -> int:
    """A one-shot server on 127.0.0.1 that answers with `reply` as it is, then waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)

    def serve():
        for _ in range(2):
            client, _ = listener.accept()
            client.recv(65536)
            try:
                client.sendall(reply)
                time.sleep(then_sleep)
            except OSError:
                pass
            finally:
                client.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_server_that_stalls_after_its_headers_times_out_as_a_failed_attempt():
    port = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nab",
        then_sleep=2,
    )
    retry = {"max_attempts": 2, "backoff_seconds": 0.01}
    calls = [api_call("slow", f"http://127.0.0.1:{port}/", timeout_seconds=0.5, retry=retry)]
    order = process(make_order([{"id": "slow", "call": "slow"}], calls))

    assert order.status == Order.Status.FAILED
    assert [entry.outcome for entry in attempts(order)] == ["retrying", "failed"]
    assert "timed out" in attempts(order)[-1].error


def test_a_body_cut_short_is_a_failed_attempt():
    port = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\nab"
    )
    retry = {"max_attempts": 2, "backoff_seconds": 0.01}
    calls = [api_call("short", f"http://127.0.0.1:{port}/", retry=retry)]
    order = process(make_order([{"id": "short", "call": "short"}], calls))

    assert order.status == Order.Status.FAILED
    assert [entry.outcome for entry in attempts(order)] == ["retrying", "failed"]
    assert "connection failed" in attempts(order)[-1].error
