"""A request authenticated by its API call's connection (contract section 10).

The connection is read when the call is sent, so a rotated credential holds at once.
Its templates see `secrets` (and, for an HMAC's message, the request). What is made from
credentials (a token, a Basic header, a signature) is masked wherever the engine stores
something: tokens and Basic headers through `derived_secrets`, which the engine's
configuration adds to the environment's secrets; a request's signature through the
result's `masked`, since it changes with every request.

The protocols are libraries' (oauthlib builds the client-credentials request and reads
its answer, botocore signs SigV4); the fleet's token cache is `orders.engine.tokens`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error

from apicalls.rendering import CallRequest
from connections.selectors import connection_named
from expressions import ExpressionError, render
from expressions.secrets import mask
from orders.engine import calls, tokens

MAX_DERIVED_SECRETS = 256


class ConnectionFailed(Exception):
    """A connection could not authenticate a request: its templates broke, or its token
    request failed. `retryable` follows the usual rules for the token endpoint's answer."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Signed:
    request: CallRequest
    cert: tuple[str, str] | None = None
    verify: str | bool = True
    masked: tuple[str, ...] = ()
    token: str | None = None  # the OAuth2 access token sent, to refresh on a 401


# What is made from credentials and lasts (tokens, Basic headers): masked everywhere.
_derived: OrderedDict[str, None] = OrderedDict()
_derived_lock = threading.Lock()


def derived_secrets() -> list[str]:
    with _derived_lock:
        return list(_derived)


def _remember(*values: str) -> None:
    with _derived_lock:
        for value in values:
            if value:
                _derived[value] = None
                _derived.move_to_end(value)
        while len(_derived) > MAX_DERIVED_SECRETS:
            _derived.popitem(last=False)


# Sending.


def send(
    request: CallRequest, *, allow: Iterable[str], secrets: Mapping[str, str]
) -> calls.CallResult:
    """Send `request` authenticated by its connection; a 401 to an OAuth2 token gets a
    fresh token and one resend, within the same attempt."""
    allow = list(allow)
    connection = connection_named(request.connection or "")
    if connection is None:
        return calls.CallResult(
            error=f'connection "{request.connection}" does not exist', refused=True
        )
    try:
        signed = sign(request, connection, secrets, allow=allow)
        result = _send_signed(signed, allow)
        if result.status == 401 and signed.token:
            signed = sign(request, connection, secrets, allow=allow, stale_token=signed.token)
            result = _send_signed(signed, allow)
    except ConnectionFailed as exc:
        error = mask(str(exc), list(secrets.values()))
        return calls.CallResult(error=error, refused=not exc.retryable, retry_after=exc.retry_after)
    return result


def _send_signed(signed: Signed, allow: list[str]) -> calls.CallResult:
    result = calls.send(signed.request, allow=allow, cert=signed.cert, verify=signed.verify)
    return replace(result, masked=signed.masked)


def sign(
    request: CallRequest,
    connection: Mapping,
    secrets: Mapping[str, str],
    *,
    allow: Iterable[str],
    stale_token: str | None = None,
) -> Signed:
    """`request` with what `connection` adds to it; raises ConnectionFailed."""
    fields = Fields(connection, secrets)
    kind = connection["kind"]
    headers = dict(request.headers)
    url = request.url
    masked: list[str] = []
    token = None
    if kind == "api_key":
        value = fields.text("value")
        if connection.get("in") == "query":
            url = _with_query(url, connection["param"], value)
        else:
            headers[connection["param"]] = value
    elif kind == "basic":
        credentials = f"{fields.text('username')}:{fields.text('password')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        _remember(headers["Authorization"], headers["Authorization"].split(" ", 1)[1])
    elif kind == "bearer":
        headers["Authorization"] = "Bearer " + fields.text("token")
    elif kind == "oauth2_client_credentials":
        token = _oauth2_token(connection, fields, request.timeout, allow, stale_token)
        headers["Authorization"] = "Bearer " + token
    elif kind == "hmac":
        masked += _sign_hmac(connection, fields, request, url, headers)
    elif kind == "aws_sigv4":
        masked += _sign_sigv4(fields, request, url, headers)
    else:
        raise ConnectionFailed(
            f'connection "{connection["name"]}": no kind "{kind}"', retryable=False
        )
    cert, verify = tls_files(fields)
    return Signed(
        replace(request, url=url, headers=headers),
        cert=cert,
        verify=verify,
        masked=tuple(masked),
        token=token,
    )


class Fields:
    """A connection's fields rendered with the secrets, each read once."""

    def __init__(self, connection: Mapping, secrets: Mapping[str, str]):
        self.connection = connection
        self.context = {"secrets": dict(secrets)}
        self.name = connection.get("name", "")

    def text(self, key: str, *, default: str = "", extra: Mapping | None = None) -> str:
        template = self.connection.get(key)
        if template in (None, ""):
            return default
        try:
            value = render(template, {**self.context, **(extra or {})}, key)
        except ExpressionError as exc:
            raise ConnectionFailed(f'connection "{self.name}": {exc}', retryable=False) from None
        return "" if value is None else str(value)


def _with_query(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = urlencode({name: value})
    return parts._replace(query=f"{parts.query}&{query}" if parts.query else query).geturl()


# OAuth2 client credentials.


def _oauth2_token(
    connection: Mapping,
    fields: Fields,
    timeout: float,
    allow: Iterable[str],
    stale: str | None,
) -> str:
    key, fetch = token_request(connection, fields, timeout, allow)
    try:
        token = tokens.access_token(key, fetch, stale=stale)
    except (TimeoutError, OSError) as exc:  # Redis unreachable, or a lock held too long
        raise ConnectionFailed(
            f'connection "{fields.name}": token cache: {exc}', retryable=True
        ) from None
    _remember(token)
    return token


def token_request(
    connection: Mapping, fields: Fields, timeout: float, allow: Iterable[str]
) -> tuple[str, Callable[[], tokens.Fetched]]:
    """The cache key of the connection's token, and the fetch of a new one (the
    client-credentials grant, as oauthlib writes it and reads its answer)."""
    token_url = fields.text("token_url")
    client_id, client_secret = fields.text("client_id"), fields.text("client_secret")
    scope, audience = fields.text("scope"), fields.text("audience")
    key = tokens.cache_key(fields.name, token_url, client_id, scope, audience, client_secret)

    def fetch() -> tokens.Fetched:
        client = BackendApplicationClient(client_id=client_id)
        in_body = connection.get("client_auth") == "body"
        extra = {"audience": audience} if audience else {}
        if in_body:
            extra["client_secret"] = client_secret
        body = client.prepare_request_body(scope=scope or None, include_client_id=in_body, **extra)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if not in_body:
            pair = f"{client_id}:{client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        cert, verify = tls_files(fields)
        request = CallRequest("POST", token_url, headers, body, timeout, body.encode())
        result = calls.send(request, allow=allow, cert=cert, verify=verify)
        return _read_token(client, result, scope, fields.name)

    return key, fetch


def _read_token(
    client: BackendApplicationClient, result: calls.CallResult, scope: str, name: str
) -> tokens.Fetched:
    where = f'connection "{name}": token request'
    if result.status is None:
        raise ConnectionFailed(f"{where} failed: {result.error}", retryable=not result.refused)
    if not 200 <= result.status < 300:
        detail = result.body.get("error") if isinstance(result.body, dict) else None
        reason = f"HTTP {result.status}" + (f" ({detail})" if detail else "")
        retryable = result.status == 429 or result.status >= 500
        raise ConnectionFailed(
            f"{where} answered {reason}", retryable=retryable, retry_after=result.retry_after
        )
    text = result.body if isinstance(result.body, str) else requests.compat.json.dumps(result.body)
    try:
        token = client.parse_request_body_response(text, scope=scope or None)
    except (OAuth2Error, ValueError, Warning) as exc:
        raise ConnectionFailed(f"{where} gave no usable token: {exc}", retryable=False) from None
    expires_in = token.get("expires_in")
    return tokens.Fetched(str(token["access_token"]), float(expires_in) if expires_in else None)


# Signatures.


def _sign_hmac(
    connection: Mapping, fields: Fields, request: CallRequest, url: str, headers: dict
) -> list[str]:
    timestamp = str(int(time.time()))
    parts = urlsplit(url)
    seen = {
        "method": request.method,
        "path": parts.path or "/",
        "query": parts.query,
        "body": (request.content or b"").decode(errors="replace"),
        "timestamp": timestamp,
    }
    message = fields.text("message", extra={"request": seen})
    algorithm = connection.get("algorithm") or "sha256"
    digest = hmac.new(fields.text("secret").encode(), message.encode(), algorithm).digest()
    if (connection.get("encoding") or "hex") == "base64":
        signature = base64.b64encode(digest).decode()
    else:
        signature = digest.hex()
    headers[connection["header"]] = signature
    if connection.get("timestamp_header"):
        headers[connection["timestamp_header"]] = timestamp
    return [signature]


def _sign_sigv4(fields: Fields, request: CallRequest, url: str, headers: dict) -> list[str]:
    credentials = Credentials(
        fields.text("access_key_id"),
        fields.text("secret_access_key"),
        fields.text("session_token") or None,
    )
    aws = AWSRequest(method=request.method, url=url, data=request.content or b"", headers=headers)
    SigV4Auth(credentials, fields.text("service"), fields.text("region")).add_auth(aws)
    headers.clear()
    headers.update(aws.headers.items())
    authorization = headers.get("Authorization", "")
    return [authorization, authorization.rpartition("Signature=")[2]]


# Mutual TLS and private certificate authorities.

_tls_dir: str | None = None
_tls_lock = threading.Lock()


def tls_files(fields: Fields) -> tuple[tuple[str, str] | None, str | bool]:
    """The client certificate and CA bundle as files (the `ssl` module loads PEM from
    files only), written once per content into a directory only this user may read."""
    certificate = fields.connection.get("client_certificate") or {}
    cert = None
    if certificate:
        client = Fields(certificate, fields.context["secrets"])
        cert = (_pem_file(client.text("cert")), _pem_file(client.text("key")))
    bundle = fields.text("ca_bundle")
    return cert, (_pem_file(bundle) if bundle else True)


def _pem_file(pem: str) -> str:
    global _tls_dir
    with _tls_lock:
        if _tls_dir is None or not os.path.isdir(_tls_dir):
            _tls_dir = tempfile.mkdtemp(prefix="statemanager-tls-")
        path = os.path.join(_tls_dir, hashlib.sha256(pem.encode()).hexdigest() + ".pem")
        if not os.path.exists(path):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(pem)
    return path
