"""Fixtures of the connections' tests: one valid connection of each kind, a saved one, an
API call naming it, and a tester registered for the test alone. The API tests take the
token clients of tests.statemanager.fixtures, the admin tests the staff users of
tests.admin_fixtures (each module imports the ones it uses)."""

from __future__ import annotations

import pytest

from apicalls.services import api_call_save
from connections.services import TestOutcome, connection_save, register_tester

PAYPAL = {
    "name": "paypal",
    "kind": "oauth2_client_credentials",
    "token_url": "{{ secrets.PAYPAL_URL }}/v1/oauth2/token",
    "client_id": "{{ secrets.PAYPAL_CLIENT_ID }}",
    "client_secret": "{{ secrets.PAYPAL_CLIENT_SECRET }}",
    "scope": "",
    "client_auth": "basic",
    "client_certificate": None,
}

# One valid connection of each kind, every optional key given.
EXAMPLES = {
    "api_key": {
        "name": "shop-key",
        "kind": "api_key",
        "in": "header",
        "param": "X-Api-Key",
        "value": "{{ secrets.SHOP_KEY }}",
    },
    "basic": {
        "name": "erp",
        "kind": "basic",
        "username": "state-manager",
        "password": "{{ secrets.ERP_PASSWORD }}",
    },
    "bearer": {"name": "crm", "kind": "bearer", "token": "{{ secrets.CRM_TOKEN }}"},
    "oauth2_client_credentials": {**PAYPAL, "audience": "https://api.paypal.example"},
    "hmac": {
        "name": "webhooks",
        "kind": "hmac",
        "secret": "{{ secrets.HOOK_SECRET }}",
        "header": "X-Signature",
        "message": "{{ request.timestamp }}.{{ request.method }}.{{ request.body }}",
        "algorithm": "sha256",
        "encoding": "hex",
        "timestamp_header": "X-Timestamp",
    },
    "aws_sigv4": {
        "name": "s3",
        "kind": "aws_sigv4",
        "access_key_id": "{{ secrets.AWS_ACCESS_KEY_ID }}",
        "secret_access_key": "{{ secrets.AWS_SECRET_ACCESS_KEY }}",
        "session_token": "{{ secrets.AWS_SESSION_TOKEN }}",
        "region": "eu-west-1",
        "service": "s3",
        "client_certificate": {"cert": "{{ secrets.S3_CERT }}", "key": "{{ secrets.S3_KEY }}"},
        "ca_bundle": "{{ secrets.S3_CA }}",
    },
}

# Every credential field, as (kind, place): the places a literal credential is refused.
CREDENTIALS = [
    ("api_key", "value"),
    ("basic", "password"),
    ("bearer", "token"),
    ("oauth2_client_credentials", "client_secret"),
    ("hmac", "secret"),
    ("aws_sigv4", "secret_access_key"),
    ("aws_sigv4", "session_token"),
    ("aws_sigv4", "client_certificate.key"),
]

QUOTE_CALL = {
    "slug": "paypal.orders",
    "name": "Create a PayPal order",
    "method": "POST",
    "url": "{{ secrets.PAYPAL_URL }}/v2/checkout/orders",
    "connection": "paypal",
    "body": {"amount": "{{ input.total }}"},
}


def with_value(definition: dict, place: str, value) -> dict:
    """A copy of `definition` with `value` at the dotted `place`."""
    copy = {key: dict(item) if isinstance(item, dict) else item for key, item in definition.items()}
    *parents, last = place.split(".")
    target = copy
    for parent in parents:
        target = target[parent]
    target[last] = value
    return copy


@pytest.fixture
def paypal(db):
    return connection_save(definition=PAYPAL)


@pytest.fixture
def paypal_call(paypal):
    """An API call that names the `paypal` connection."""
    return api_call_save(definition=QUOTE_CALL)


@pytest.fixture
def tester():
    """A fake tester, registered for this test only (the one before is put back): it tests
    the wiring from the button and the API to the hook, not any real token fetch. Each
    connection it is given is recorded in `tester.seen`."""
    seen = []

    def fake(connection) -> TestOutcome:
        seen.append(connection.name)
        return TestOutcome(
            ok=True,
            summary=f"Token fetched from the token URL of {connection.name}.",
            details={"status": 200, "access_token": "***", "expires_in": 3600},
        )

    fake.seen = seen
    previous = register_tester(fake)
    yield fake
    register_tester(previous)


@pytest.fixture
def no_tester():
    """No tester registered, for this test only."""
    previous = register_tester(None)
    yield
    register_tester(previous)
