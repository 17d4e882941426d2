"""Requests authenticate with their API call's connection (contract section 10), against
local servers that check each scheme the way a partner does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from orders.models import Order
from tests.localserver import LocalServer, Reply
from tests.orders.connections import API_KEY, CLIENT_ID, CLIENT_SECRET, connection, one_call_order
from tests.orders.engine.test_secrets import database_dump
from tests.orders.workflows import api_call, attempts, make_order, process
from tests.tls import CertificateAuthority

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_oauth2_token_is_fetched_once_and_reused_until_it_nears_expiry(server, oauth):
    orders = [one_call_order(server.url + "/api/orders", "pay") for _ in range(6)]
    process(orders[0])

    assert {o.status for o in Order.objects.all()} == {Order.Status.COMPLETED}
    assert oauth.fetched == 1
    time.sleep(2.1)
    later = process(one_call_order(server.url + "/api/orders", "pay"))

    assert later.status == Order.Status.COMPLETED, later.error
    assert oauth.fetched == 2
    assert oauth.expired_calls == 0
    (attempt,) = attempts(later)
    assert attempt.response["body"]["authorization"] == "Bearer ***"
    dump = database_dump()
    assert not [token for token in oauth.issued if token in dump]
    assert CLIENT_SECRET not in dump


def test_a_401_gets_a_fresh_token_and_one_resend_within_the_same_attempt(server, oauth):
    first = process(one_call_order(server.url + "/api/orders", "pay"))
    oauth.revoked.update(oauth.issued)  # the partner drops its tokens early

    second = process(one_call_order(server.url + "/api/orders", "pay"))

    assert (first.status, second.status) == (Order.Status.COMPLETED, Order.Status.COMPLETED)
    assert oauth.fetched == 2
    (attempt,) = attempts(second)
    assert attempt.outcome == "succeeded"
    assert attempt.response["status"] == 200


def test_a_refused_token_request_is_the_calls_failed_attempt_not_retried(server, oauth, secrets):
    secrets(PAY_CLIENT_SECRET="wrong")
    order = one_call_order(
        server.url + "/api/orders", "pay", retry={"max_attempts": 3, "backoff_seconds": 0}
    )

    order = process(order)

    assert order.status == Order.Status.FAILED
    assert "token request answered HTTP 401 (invalid_client)" in order.error
    assert oauth.fetched == 1
    assert server.requests_to("/api/orders") == []


def test_a_token_endpoint_that_is_down_is_retried_as_any_call(server, secrets):
    secrets(PAY_CLIENT_ID=CLIENT_ID, PAY_CLIENT_SECRET=CLIENT_SECRET)
    server.route("POST", "/oauth/token", Reply(503, {"error": "temporarily_unavailable"}))
    connection(
        "pay",
        "oauth2_client_credentials",
        token_url=server.url + "/oauth/token",
        client_id="{{ secrets.PAY_CLIENT_ID }}",
        client_secret="{{ secrets.PAY_CLIENT_SECRET }}",
        client_auth="body",
    )
    order = one_call_order(
        server.url + "/api/orders", "pay", retry={"max_attempts": 2, "backoff_seconds": 0}
    )

    order = process(order)

    assert order.status == Order.Status.FAILED
    assert "token request answered HTTP 503" in order.error
    (first, *_) = server.requests_to("/oauth/token")
    assert parse_qs(first.raw.decode())["client_secret"] == [CLIENT_SECRET]
    assert len(server.requests_to("/oauth/token")) == 2


def test_api_keys_basic_and_bearer_are_added_and_never_stored(server, secrets):
    secrets(KEY=API_KEY, USER="shop", PASSWORD="pa55:w/rd", TOKEN="bearer-t0ken")
    connection(
        "in-header", "api_key", **{"in": "header", "param": "X-Api-Key"}, value="{{ secrets.KEY }}"
    )
    connection("in-query", "api_key", **{"in": "query", "param": "key"}, value="{{ secrets.KEY }}")
    connection("basic", "basic", username="{{ secrets.USER }}", password="{{ secrets.PASSWORD }}")
    connection("bearer", "bearer", token="{{ secrets.TOKEN }}")
    server.fallback = lambda request: Reply(200, {"echo": request.headers, "path": request.path})
    calls = [
        api_call(
            name,
            f"{server.url}/{name}?page=1",
            connection=name,
            save={"echo": "{{ response.body }}"},
        )
        for name in ("in-header", "in-query", "basic", "bearer")
    ]
    steps = [{"id": call["slug"], "call": call["slug"]} for call in calls]

    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED, order.error
    received = {r.path.split("?")[0].strip("/"): r for r in server.received}
    assert received["in-header"].headers["X-Api-Key"] == API_KEY
    assert parse_qs(urlsplit(received["in-query"].path).query) == {"page": ["1"], "key": [API_KEY]}
    basic = base64.b64encode(b"shop:pa55:w/rd").decode()
    assert received["basic"].headers["Authorization"] == f"Basic {basic}"
    assert received["bearer"].headers["Authorization"] == "Bearer bearer-t0ken"
    dump = database_dump()
    for credential in (API_KEY, basic, "pa55:w/rd", "bearer-t0ken"):
        assert credential not in dump
    assert "***" in str(order.data)


def test_an_hmac_signs_the_exact_bytes_sent(server, secrets):
    secrets(HOOK_SECRET="hm4c-secret")
    connection(
        "signed",
        "hmac",
        secret="{{ secrets.HOOK_SECRET }}",
        header="X-Signature",
        message=(
            "{{ request.timestamp }}.{{ request.method }}.{{ request.path }}.{{ request.body }}"
        ),
        algorithm="sha256",
        encoding="base64",
        timestamp_header="X-Timestamp",
    )

    def verify(request) -> Reply:
        message = f"{request.headers['X-Timestamp']}.POST./hook.".encode() + request.raw
        expected = base64.b64encode(hmac.new(b"hm4c-secret", message, hashlib.sha256).digest())
        if not hmac.compare_digest(expected.decode(), request.headers["X-Signature"]):
            return Reply(401, {"error": "bad signature"})
        return Reply(200, {"signature": request.headers["X-Signature"]})

    server.route("POST", "/hook", verify)
    order = one_call_order(
        server.url + "/hook",
        "signed",
        body_type="form",
        body={"a": "é ü", "n": "{{ order.order_id }}"},
        save={"seen": "{{ response.body.signature }}"},
    )

    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
    (received,) = server.requests_to("/hook")
    assert received.headers["X-Signature"] not in database_dump()
    (attempt,) = attempts(order)
    assert attempt.response["body"] == {"signature": "***"}


def test_sigv4_is_what_botocore_verifies_on_the_server(server, secrets):
    secrets(AWS_KEY="AKIDEXAMPLE", AWS_SECRET="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    connection(
        "aws",
        "aws_sigv4",
        access_key_id="{{ secrets.AWS_KEY }}",
        secret_access_key="{{ secrets.AWS_SECRET }}",
        region="eu-west-1",
        service="execute-api",
    )
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

    def verify(request) -> Reply:
        signed = dict(request.headers)
        authorization = signed.pop("Authorization")
        names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        aws = AWSRequest(
            method=request.method,
            url=server.url + request.path,
            data=request.raw,
            headers={k: v for k, v in signed.items() if k.lower() in names},
        )
        aws.context["timestamp"] = signed["X-Amz-Date"]
        signer = SigV4Auth(credentials, "execute-api", "eu-west-1")
        canonical = signer.canonical_request(aws)
        expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
        if authorization.rpartition("Signature=")[2] != expected:
            return Reply(403, {"message": "The request signature we calculated does not match"})
        return Reply(200, {"ok": True})

    server.route("POST", "/prod/orders", verify)
    order = one_call_order(
        server.url + "/prod/orders?x=1", "aws", body={"order": "{{ order.order_id }}"}
    )

    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
    assert "wJalrXUtnFEMI" not in database_dump()


def test_mutual_tls_with_a_private_certificate_authority(secrets):
    authority = CertificateAuthority()
    client = authority.issue("shop", server=False)
    https = LocalServer(ssl_context=authority.server_context(require_client_certificate=True))
    https.route("POST", "/bank", Reply(200, {"ok": True}))
    secrets(BANK_CERT=client.cert, BANK_KEY=client.key, BANK_CA=authority.pem, BANK_TOKEN="b4nk")
    try:
        connection(
            "bank",
            "bearer",
            token="{{ secrets.BANK_TOKEN }}",
            client_certificate={"cert": "{{ secrets.BANK_CERT }}", "key": "{{ secrets.BANK_KEY }}"},
            ca_bundle="{{ secrets.BANK_CA }}",
        )
        connection(
            "no-cert", "bearer", token="{{ secrets.BANK_TOKEN }}", ca_bundle="{{ secrets.BANK_CA }}"
        )

        with_cert = process(one_call_order(https.url + "/bank", "bank"))
        without = process(one_call_order(https.url + "/bank", "no-cert"))
    finally:
        https.stop()

    assert with_cert.status == Order.Status.COMPLETED, with_cert.error
    assert without.status == Order.Status.FAILED
    assert "connection failed" in without.error
    assert len(https.requests_to("/bank")) == 1
    assert "PRIVATE KEY" not in database_dump()
