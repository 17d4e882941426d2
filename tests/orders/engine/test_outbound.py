"""The outbound allowlist: checked on resolved addresses, before any byte is sent, on every hop."""

from dataclasses import replace

import pytest

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

RETRY = {"max_attempts": 3, "backoff_seconds": 0.01}


def allow(settings, *entries):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, outbound_allow=list(entries))


def one_call_order(url: str) -> Order:
    return make_order([{"id": "a", "call": "a"}], [api_call("a", url, retry=RETRY)])


def test_a_listed_host_name_may_be_called_whatever_it_resolves_to(server, settings):
    allow(settings, "localhost")
    server.route("POST", "/a", Reply(200))
    port = server.url.rsplit(":", 1)[1]
    order = process(one_call_order(f"http://localhost:{port}/a"))

    assert order.status == Order.Status.COMPLETED, order.error
    assert server.requests_to("/a")[0].headers["Host"] == f"localhost:{port}"


def test_a_name_resolving_to_a_loopback_address_is_refused_unless_listed(server, settings):
    allow(settings, "10.0.0.0/8", "api.example")
    server.route("POST", "/a", Reply(200))
    port = server.url.rsplit(":", 1)[1]
    order = process(one_call_order(f"http://localhost:{port}/a"))

    assert order.status == Order.Status.FAILED
    assert "127.0.0.1 (localhost) is a loopback address not listed" in order.error
    assert server.received == []


def test_a_listed_cidr_range_allows_its_addresses(server, settings):
    allow(settings, "127.0.0.0/8")
    server.route("POST", "/a", Reply(200))
    order = process(one_call_order(server.url + "/a"))

    assert order.status == Order.Status.COMPLETED


def test_a_link_local_address_is_refused_at_once_and_not_retried(settings):
    allow(settings, "127.0.0.1")
    order = process(one_call_order("http://169.254.169.254/latest/meta-data"))

    assert order.status == Order.Status.FAILED
    assert "is a link-local address not listed in STATE_MANAGER_OUTBOUND_ALLOW" in order.error
    assert [entry.outcome for entry in attempts(order)] == ["failed"]


def test_a_redirect_to_a_host_that_is_not_allowed_is_not_followed(server, settings):
    allow(settings, "localhost")
    port = server.url.rsplit(":", 1)[1]
    server.route("POST", "/go", Reply(302, "", headers={"Location": f"http://127.0.0.2:{port}/in"}))
    server.route("GET", "/in", Reply(200))
    order = process(one_call_order(f"http://localhost:{port}/go"))

    assert order.status == Order.Status.FAILED
    assert "127.0.0.2 (127.0.0.2) is a loopback address not listed" in order.error
    assert [request.path for request in server.received] == ["/go"]


def test_a_redirect_to_an_allowed_host_is_followed(server, settings):
    allow(settings, "127.0.0.1")
    server.route("POST", "/go", Reply(302, "", headers={"Location": server.url + "/in"}))
    server.route("GET", "/in", Reply(200, {"ok": True}))
    calls = [api_call("a", server.url + "/go", save={"ok": "{{ response.body.ok }}"})]
    order = process(
        make_order([{"id": "a", "call": "a", "save": {"ok": "{{ response.body.ok }}"}}], calls)
    )

    assert order.status == Order.Status.COMPLETED
    assert order.data == {"ok": True}


def test_only_http_and_https_urls_are_called(settings):
    allow(settings, "127.0.0.1")
    order = process(one_call_order("file:///etc/passwd"))

    assert order.status == Order.Status.FAILED
    assert "is not an http or https URL" in order.error
