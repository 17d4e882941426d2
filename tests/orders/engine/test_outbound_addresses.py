"""Outbound addresses: host names that do not resolve, and IPv6 addresses carrying IPv4 ones."""

import ipaddress
from dataclasses import replace

import pytest

from orders.engine.calls import OutboundAllowlist
from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

RETRY = {"max_attempts": 2, "backoff_seconds": 0.01}


def allow(settings, *entries):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, outbound_allow=list(entries))


def one_call_order(url: str) -> Order:
    return make_order([{"id": "a", "call": "a"}], [api_call("a", url, retry=RETRY)])


def test_a_host_name_that_does_not_resolve_is_reported_as_such():
    order = process(one_call_order("http://nosuch.invalid/a"))

    assert order.status == Order.Status.FAILED
    errors = [entry.error for entry in attempts(order)]
    assert len(errors) == 2  # a failed connection, tried again like any other
    for error in errors:
        assert error.startswith("connection failed: cannot resolve nosuch.invalid: ")
        assert "IPv4 or IPv6 address" not in error


@pytest.mark.parametrize(
    "address",
    ["::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:127.0.0.1", "::ffff:0:7f00:1"],
)
def test_an_ipv6_address_carrying_an_ipv4_one_is_judged_as_that_ipv4_address(address):
    carried = ipaddress.ip_address(address)
    loopback_refused = OutboundAllowlist.parse(["10.0.0.0/8"])
    loopback_allowed = OutboundAllowlist.parse(["127.0.0.1"])

    assert loopback_refused.refusal(address, carried) == (
        f"127.0.0.1 ({address}) is a loopback address not listed in STATE_MANAGER_OUTBOUND_ALLOW"
    )
    assert loopback_refused.refusal("api.example", carried) == (
        f"127.0.0.1 (api.example at {carried}) is a loopback address not listed in "
        "STATE_MANAGER_OUTBOUND_ALLOW"
    )
    assert loopback_allowed.refusal(address, carried) is None


@pytest.mark.parametrize("address", ["::a00:1", "64:ff9b::a00:1", "2002:a00:1::"])
def test_a_carried_private_address_is_refused_and_a_carried_public_one_allowed(address):
    allowlist = OutboundAllowlist.parse([])

    assert "10.0.0.1" in allowlist.refusal(address, ipaddress.ip_address(address))
    public = address.replace("a00:1", "808:808")
    assert allowlist.refusal(public, ipaddress.ip_address(public)) is None


def test_ipv6s_own_loopback_is_not_taken_for_an_ipv4_address():
    reason = OutboundAllowlist.parse(["0.0.0.0/8"]).refusal("::1", ipaddress.ip_address("::1"))

    assert reason == "::1 (::1) is a loopback address not listed in STATE_MANAGER_OUTBOUND_ALLOW"


def test_an_ipv4_compatible_loopback_url_is_refused_before_sending(server, settings):
    allow(settings, "10.0.0.0/8")
    server.route("POST", "/a", Reply(200))
    port = server.url.rsplit(":", 1)[1]
    order = process(one_call_order(f"http://[::7f00:1]:{port}/a"))

    assert order.status == Order.Status.FAILED
    assert "127.0.0.1 (::7f00:1) is a loopback address not listed" in order.error
    assert [entry.outcome for entry in attempts(order)] == ["failed"]  # refused, not retried
    assert server.received == []
