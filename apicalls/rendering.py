"""An API call's request rendered from its templates, and as it is written to the log.

Used by the engine before it sends, and by the admin's "Try it", which sends nothing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from expressions import ExpressionError, render
from expressions.secrets import load_secrets, mask, mask_headers

DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class CallRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: Any  # a JSON value, or None for no body
    timeout: float


def render_request(api_call: Mapping, context: Mapping, *, idempotency_key: str) -> CallRequest:
    """The request an API call's templates give in this context; raises ExpressionError."""
    method = str(api_call.get("method", "GET")).upper()
    url = render(api_call["url"], context, "url")
    query = render(api_call.get("query") or {}, context, "query")
    headers = render(api_call.get("headers") or {}, context, "headers")
    body = render(api_call["body"], context, "body") if "body" in api_call else None
    if method == "GET" and body == {}:
        body = None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ExpressionError(f'url: "{url}" is not an http or https URL')
    if query:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, {key: _query_value(value) for key, value in query.items()})
        url = prepared.url
    else:
        url = _prepared_url(url)
    headers = {str(name): _header_value(value) for name, value in headers.items()}
    headers["Idempotency-Key"] = idempotency_key
    timeout = float(api_call.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)
    return CallRequest(method, url, headers, body, timeout)


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> str:
    """The URL as `requests` sends it; kept, since the calls of one API call mostly repeat
    their URL, and `requests` takes longer to build it than the templates to render."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


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
    return {
        "method": request.method,
        "url": mask(request.url, secret_values),
        "headers": mask_headers(request.headers, secret_values),
        "body": truncated(mask(request.body, secret_values), max_body_bytes),
    }


def render_preview(
    api_call: Mapping,
    *,
    input: Any,
    params: Mapping | None = None,
    data: Mapping | None = None,
) -> dict:
    """The request an API call would send for a sample input, secrets masked; sends nothing."""
    secrets = load_secrets()
    context = {
        "input": input,
        "data": dict(data or {}),
        "params": dict(params or {}),
        "order": {"order_id": "preview", "workflow": "preview", "created_at": "", "run": 1},
        "secrets": secrets,
        "error": None,
        "callback": {"url": "https://example.invalid/api/callbacks/preview/", "token": "preview"},
    }
    request = render_request(api_call, context, idempotency_key="preview")
    return log_request(request, secret_values=secrets.values(), max_body_bytes=64 * 1024)
