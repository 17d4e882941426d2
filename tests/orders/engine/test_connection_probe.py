"""The "Test" of a connection (POST /api/connections/{name}/test/) with the engine's tester:
a real token fetched from a local token endpoint, a sample request signed, all masked."""

import hashlib
import hmac

import pytest

from tests.orders.connections import API_KEY, connection
from tests.statemanager.fixtures import *  # noqa: F403
from tests.tls import CertificateAuthority

pytestmark = pytest.mark.django_db


def test_testing_an_oauth2_connection_fetches_a_token_and_shows_it_masked(server, oauth, editor):
    response = editor.post("/api/connections/pay/test/")

    assert response.status_code == 200
    outcome = response.json()
    assert outcome["ok"] is True, outcome
    assert outcome["summary"] == "Got an access token from 127.0.0.1 (2 s)."
    assert outcome["details"]["access_token"] == "***"
    assert oauth.fetched == 1
    assert not any(token in response.content.decode() for token in oauth.issued)


def test_testing_with_a_wrong_client_secret_says_what_the_token_endpoint_answered(
    server, oauth, secrets, support
):
    secrets(PAY_CLIENT_SECRET="wrong")

    outcome = support.post("/api/connections/pay/test/").json()

    assert outcome == {
        "ok": False,
        "summary": 'connection "pay": token request answered HTTP 401 (invalid_client)',
        "details": {},
    }


def test_testing_a_signing_connection_shows_the_sample_request_masked(secrets, editor):
    secrets(HOOK_SECRET="hm4c-secret", KEY=API_KEY)
    connection(
        "signed",
        "hmac",
        secret="{{ secrets.HOOK_SECRET }}",
        header="X-Signature",
        message="{{ request.body }}",
        algorithm="sha512",
        encoding="hex",
    )
    connection("keyed", "api_key", **{"in": "query", "param": "key"}, value="{{ secrets.KEY }}")

    signed = editor.post("/api/connections/signed/test/").json()
    keyed = editor.post("/api/connections/keyed/test/").json()

    expected = hmac.new(b"hm4c-secret", b'{"test": true}', hashlib.sha512).hexdigest()
    assert signed["ok"] is True
    assert signed["summary"] == "Signed a sample request: it carries X-Signature."
    assert signed["details"]["request"]["headers"]["X-Signature"] == "***"
    assert expected not in str(signed)
    assert keyed["summary"] == "Signed a sample request: it carries the query parameter key."
    assert keyed["details"]["request"]["url"].endswith("?page=1&key=***")


def test_testing_a_client_certificate_whose_key_does_not_match_says_so(secrets, editor):
    authority = CertificateAuthority()
    one, other = authority.issue("a", server=False), authority.issue("b", server=False)
    secrets(CERT=one.cert, KEY=other.key, TOKEN="bank-t0ken")
    connection(
        "bank",
        "bearer",
        token="{{ secrets.TOKEN }}",
        client_certificate={"cert": "{{ secrets.CERT }}", "key": "{{ secrets.KEY }}"},
    )

    outcome = editor.post("/api/connections/bank/test/").json()

    assert outcome["ok"] is False
    assert outcome["summary"].startswith("the client certificate or CA bundle cannot be used")
    assert "PRIVATE KEY" not in str(outcome)
