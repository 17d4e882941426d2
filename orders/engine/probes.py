"""The "Test" of a connection (admin and API): fetch a token, or sign a sample request,
through the same outbound transport as the engine's calls, and say what happened, masked.

A token fetched here is not cached: a test shows what the token endpoint answers now.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from apicalls.rendering import CallRequest, log_request
from connections.models import Connection
from connections.services import TestOutcome
from core.conf import conf
from expressions.secrets import load_secrets, mask
from orders.engine import auth

SAMPLE_URL = "https://partner.example/connection-test?page=1"
TIMEOUT_SECONDS = 10.0


def probe_connection(connection: Connection) -> TestOutcome:
    definition = connection.as_definition()
    secrets = load_secrets()
    hidden = [value for value in secrets.values() if value]
    fields = auth.Fields(definition, secrets)
    allow = list(conf().outbound_allow)
    try:
        certificate = _certificate_problem(fields)
        if certificate:
            return TestOutcome(ok=False, summary=mask(certificate, hidden))
        if definition["kind"] == Connection.Kind.OAUTH2_CLIENT_CREDENTIALS:
            return _fetch_token(definition, fields, allow, hidden)
        return _sign_sample(definition, secrets, allow, hidden)
    except auth.ConnectionFailed as exc:
        return TestOutcome(ok=False, summary=mask(str(exc), hidden))


def _certificate_problem(fields: auth.Fields) -> str | None:
    """Why the client certificate or the CA bundle cannot be used, or None."""
    cert, verify = auth.tls_files(fields)
    try:
        context = ssl.create_default_context()
        if cert:
            context.load_cert_chain(*cert)
        if isinstance(verify, str):
            context.load_verify_locations(verify)
    except ssl.SSLError as exc:
        return f"the client certificate or CA bundle cannot be used: {exc.reason or exc}"
    return None


def _fetch_token(definition: dict, fields: auth.Fields, allow: list, hidden: list) -> TestOutcome:
    _key, fetch = auth.token_request(definition, fields, TIMEOUT_SECONDS, allow)
    fetched = fetch()
    lasts = "no expiry given" if fetched.expires_in is None else f"{fetched.expires_in:g} s"
    host = urlsplit(fields.text("token_url")).hostname or "the token URL"
    details = {
        "token_url": mask(fields.text("token_url"), hidden),
        "access_token": "***",
        "expires_in": fetched.expires_in,
    }
    return TestOutcome(
        ok=True, summary=f"Got an access token from {host} ({lasts}).", details=details
    )


def _sign_sample(definition: dict, secrets: dict, allow: list, hidden: list) -> TestOutcome:
    body = b'{"test": true}'
    sample = CallRequest(
        "POST",
        SAMPLE_URL,
        {"Content-Type": "application/json"},
        {"test": True},
        TIMEOUT_SECONDS,
        body,
    )
    signed = auth.sign(sample, definition, secrets, allow=allow)
    added = [name for name in signed.request.headers if name not in sample.headers]
    if signed.request.url != sample.url:
        added.append(f"the query parameter {definition.get('param')}")
    shown = log_request(
        signed.request,
        secret_values=[*hidden, *signed.masked, *auth.derived_secrets()],
        max_body_bytes=1024,
    )
    summary = "Signed a sample request: it carries " + (", ".join(added) or "nothing more") + "."
    if signed.cert:
        summary += " The client certificate is presented on every connection."
    return TestOutcome(ok=True, summary=summary, details={"request": shown})
