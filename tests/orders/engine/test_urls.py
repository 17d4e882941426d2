"""Rendered URLs that cannot be sent fail their attempt, saying why, and are not retried."""

import pytest

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

RETRY = {"max_attempts": 3, "backoff_seconds": 0.01}
SECRET = "tok-5e4d3c2b1a"


def one_call_order(url: str) -> Order:
    return make_order([{"id": "a", "call": "a"}], [api_call("a", url, retry=RETRY)])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1%09/", "control character"),
        ("http://[::ffff:127.1]/", "IPv6 address"),
        ("http://１２７.０.０.１/", "IDNA"),
        ("http://[::1/", "IPv6"),
        ("http://127.0.0.1:99999/", "port"),
        ("http://127.0.0.1:http/", "port"),
        ("http:///a", "no host"),
        ("http://user@/a", "no host"),
        ("http://exa mple.example/", "invalid character"),
        (f"http://{'a' * 64}.example/", "longer than 63"),
        ("http://api..example/", "empty"),
        ("http://exämple..example/", "empty"),
        (f"http://{'abcdefgh.' * 29}example/", "longer than 253"),
    ],
)
def test_a_url_that_cannot_be_sent_fails_the_attempt_with_the_reason(url, reason):
    order = process(one_call_order(url))

    assert order.status == Order.Status.FAILED
    (attempt,) = attempts(order)  # failed once, not retried
    assert attempt.outcome == "failed"
    assert attempt.error.startswith(f'url: "{url}" is not a valid URL: ')
    assert reason.lower() in attempt.error.lower()
    assert order.error == f'step "a": {attempt.error}'
    assert "internal error" not in order.error


def test_the_reason_a_url_cannot_be_sent_masks_the_secrets_in_it(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PARTNER_HOST", SECRET)
    order = process(one_call_order("http://{{ secrets.PARTNER_HOST }}%09.example/"))

    assert order.status == Order.Status.FAILED
    (attempt,) = attempts(order)
    assert attempt.error.startswith('url: "http://***%09.example/" is not a valid URL: ')
    assert SECRET not in attempt.error and SECRET not in order.error


def test_a_redirect_to_a_url_that_cannot_be_sent_fails_the_attempt_without_retries(server):
    server.route("POST", "/a", Reply(302, headers={"Location": "http://127.0.0.1%09/b"}))
    order = process(one_call_order(server.url + "/a"))

    assert order.status == Order.Status.FAILED
    (attempt,) = attempts(order)
    assert attempt.error == (
        'invalid URL "http://127.0.0.1%09/b": its host "127.0.0.1%09" has a character no '
        "host name has"
    )
    assert len(server.requests_to("/a")) == 1


@pytest.mark.parametrize("location", ["http://[::1/b", f"http://{'a' * 64}.example/b"])
def test_a_redirect_to_a_malformed_url_is_not_retried(server, location):
    server.route("POST", "/a", Reply(302, headers={"Location": location}))
    order = process(one_call_order(server.url + "/a"))

    assert order.status == Order.Status.FAILED
    (attempt,) = attempts(order)
    assert attempt.error.startswith("invalid URL")
    assert len(server.requests_to("/a")) == 1
