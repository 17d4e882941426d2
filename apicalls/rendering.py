"""An API call's request rendered from its templates, and as it is written to the log.

Used by the engine before it sends, and by the admin's "Try it", which sends nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from apicalls.bodies import encode_body
from expressions import ExpressionError, render
from expressions.secrets import load_secrets, mask, mask_headers

DEFAULT_TIMEOUT_SECONDS = 10.0
HOST_NAME = re.compile(r"[a-z0-9_.-]+")  # what DNS is asked about, after IDNA


@dataclass(frozen=True)
class CallRequest:
    method: str
    url: str
    headers: dict[str, str]  # Content-Type included when there is a body
    body: Any  # as the log shows it (a JSON value, or the text sent), or None for no body
    timeout: float
    content: bytes | None = None  # the body's bytes as sent
    connection: str | None = None  # the connection that authenticates the request


def render_request(api_call: Mapping, context: Mapping, *, idempotency_key: str) -> CallRequest:
    """The request an API call's templates give in this context; raises ExpressionError."""
    method = str(api_call.get("method", "GET")).upper()
    url = render(api_call["url"], context, "url")
    query = render(api_call.get("query") or {}, context, "query")
    headers = render(api_call.get("headers") or {}, context, "headers")
    body = render(api_call["body"], context, "body") if "body" in api_call else None
    if method == "GET" and body == {}:
        body = None
    secret_values = (context.get("secrets") or {}).values()
    if not isinstance(url, str) or _scheme(url) not in ("http", "https"):
        raise ExpressionError(mask(f'url: "{url}" is not an http or https URL', secret_values))
    try:
        url = _sendable_url(url, query)
    except ValueError as exc:  # requests' InvalidURL and UnicodeError are ValueErrors too
        message = f'url: "{url}" is not a valid URL: {url_reason(exc)}'
        raise ExpressionError(mask(message, secret_values)) from None
    headers = {str(name): _header_value(value) for name, value in headers.items()}
    headers["Idempotency-Key"] = idempotency_key
    timeout = float(api_call.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)
    content = None
    if body is not None:
        encoded = encode_body(body, api_call.get("body_type") or "json")
        body, content = encoded.shown, encoded.content
        _set_content_type(
            headers, encoded.content_type, replace=encoded.content_type.startswith("multipart/")
        )
    connection = api_call.get("connection") or None
    return CallRequest(method, url, headers, body, timeout, content, connection)


def _set_content_type(headers: dict[str, str], content_type: str, *, replace: bool) -> None:
    """The body's Content-Type unless the call's headers name one; a multipart body's is
    always its own, since only it knows the boundary."""
    given = [name for name in headers if name.lower() == "content-type"]
    if given and not replace:
        return
    for name in given:
        del headers[name]
    headers["Content-Type"] = content_type


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:  # its host is bad, which `_sendable_url` says
        return url.partition(":")[0].strip().lower()


def _sendable_url(url: str, query: Mapping) -> str:
    """The URL as `requests` sends it, with `query`; raises ValueError for one that cannot
    be sent, caught here rather than when sending (where it would be an internal error)."""
    if not query:
        return _prepared_url(url)
    _check_host(url, prepared=False)
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, {key: _query_value(value) for key, value in query.items()})
    _check_host(prepared.url)
    return prepared.url


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> str:
    """The URL as `requests` sends it; kept, since the calls of one API call mostly repeat
    their URL, and `requests` takes longer to build it than the templates to render."""
    _check_host(url, prepared=False)  # first: requests' own words for these are less clear
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    _check_host(prepared.url)
    return prepared.url


def url_problem(url: str) -> str | None:
    """Why a prepared URL (a redirect's too) cannot be sent, or None; cheap, for every hop.

    >>> url_problem("https://api.partner.example:8443/v1?q=1") is None
    True
    >>> url_problem("http://127.0.0.1%09/")
    'its host "127.0.0.1%09" has a character no host name has'
    """
    try:
        _check_host(url)
    except ValueError as exc:
        return url_reason(exc)
    return None


def _check_host(url: str, *, prepared: bool = True) -> None:
    """What `requests` lets through but the socket layer would refuse (or never ask DNS
    about): no host, a bad port, a bracketed address that is none, DNS's length limits,
    and (once `requests` made its IDNA form) a character no host name has."""
    parts = urlsplit(url)  # raises for an unclosed "[" ("Invalid IPv6 URL")
    port = parts.port  # raises for a port out of range or not a number
    host = parts.hostname or ""
    if not host:
        raise ValueError("it names no host")
    if port == 0:
        raise ValueError("port 0 cannot be called")
    if parts.netloc.rpartition("@")[2].startswith("["):
        ipaddress.IPv6Address(host)  # raises "... does not appear to be an IPv6 address"
        return
    if not prepared and not host.isascii():
        return  # requests turns it into its IDNA form first, checked after
    if prepared and not HOST_NAME.fullmatch(host):
        raise ValueError(f'its host "{host}" has a character no host name has')
    labels = host.rstrip(".").split(".")
    if any(not label for label in labels):
        raise ValueError(f'its host "{host}" has an empty label')
    if any(len(label) > 63 for label in labels):
        raise ValueError(f'its host "{host}" has a label longer than 63 characters')
    if len(host.rstrip(".")) > 253:
        raise ValueError(f'its host "{host}" is longer than 253 characters')


def url_reason(exc: ValueError) -> str:
    """The reason without the prefixes `requests` and `urllib3` give it."""
    reason = str(exc) or type(exc).__name__
    for prefix in ("Failed to parse: ", "Invalid URL "):
        reason = reason.removeprefix(prefix)
    return reason


def _query_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_query_value(item) for item in value]
    return value if isinstance(value, str) else json.dumps(value)


def _header_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def truncated(value: Any, max_bytes: int) -> Any:
    """A body as stored in the log: as it is, or its JSON text cut at `max_bytes`."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text.encode()) <= max_bytes:
        return value
    cut = text.encode()[:max_bytes].decode(errors="ignore")
    return f"{cut}… [truncated, {len(text.encode())} bytes in all]"


def log_request(request: CallRequest, *, secret_values: Iterable[str], max_body_bytes: int) -> dict:
    secret_values = list(secret_values)
    logged = {
        "method": request.method,
        "url": mask(request.url, secret_values),
        "headers": mask_headers(request.headers, secret_values),
        "body": truncated(mask(request.body, secret_values), max_body_bytes),
    }
    if request.connection:
        logged["connection"] = request.connection
    return logged


def preview_context(*, input: Any, params: Mapping | None, data: Mapping | None) -> dict:
    """What the templates of a sample request see, with the secrets as they are set."""
    return {
        "input": input,
        "data": dict(data or {}),
        "params": dict(params or {}),
        "order": {"order_id": "preview", "workflow": "preview", "created_at": "", "run": 1},
        "secrets": load_secrets(),
        "error": None,
        "callback": {"url": "https://example.invalid/api/callbacks/preview/", "token": "preview"},
    }


def render_preview(
    api_call: Mapping,
    *,
    input: Any,
    params: Mapping | None = None,
    data: Mapping | None = None,
) -> dict:
    """The request an API call would send for a sample input, secrets masked; sends nothing."""
    context = preview_context(input=input, params=params, data=data)
    request = render_request(api_call, context, idempotency_key="preview")
    secret_values = context["secrets"].values()
    return log_request(request, secret_values=secret_values, max_body_bytes=64 * 1024)
