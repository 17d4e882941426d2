"""Render one API call from its definition, send it, and describe what came back.

Sending goes through one pooled `requests` session per worker thread, with a timeout
always set, and through `GuardedAdapter`, which resolves the host itself, refuses
addresses that `STATE_MANAGER_OUTBOUND_ALLOW` does not allow, and connects to the very
address it checked (so a name cannot resolve to one address for the check and another
for the connection). Redirects are followed hop by hop through the same adapter, so a
redirect to a refused host is refused too.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from apicalls.rendering import CallRequest, truncated, url_problem, url_reason
from core import tracing
from expressions import is_true
from expressions.secrets import mask, mask_headers
from expressions.values import depth, map_strings, storable_text
from orders.engine.deadlines import POOL_CLASSES
from orders.engine.retry import retry_after_seconds

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_BODY_DEPTH = 64
USER_AGENT = "state-manager/0.1"


class OutboundRefused(requests.RequestException):
    """The host is not one the engine may call."""


class UnsendableURL(requests.RequestException):
    """A URL (a redirect's, the rendered one being checked before) that cannot be sent."""


# What `requests` raises for a URL it cannot send (each also a ValueError but the last).
URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    UnsendableURL,
)


# The outbound allowlist.


@dataclass(frozen=True)
class OutboundAllowlist:
    """Host names, addresses and CIDR ranges that may be called although private.

    >>> allow = OutboundAllowlist.parse(["127.0.0.1", "10.1.0.0/16", "Intranet.Example"])
    >>> allow.refusal("intranet.example", ipaddress.ip_address("10.9.9.9")) is None
    True
    >>> allow.refusal("api.example", ipaddress.ip_address("10.1.2.3")) is None
    True
    >>> allow.refusal("api.example", ipaddress.ip_address("192.168.1.1"))
    '192.168.1.1 (api.example) is a private address not listed in STATE_MANAGER_OUTBOUND_ALLOW'
    """

    names: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> OutboundAllowlist:
        names, networks = set(), []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def refusal(
        self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> str | None:
        """Why `address` (which `host` resolved to) may not be called, or None when it may.

        An IPv6 address that carries an IPv4 one is judged as the IPv4 address, which is
        where a NAT64 or 6to4 gateway (or the host's own stack) would send it.
        """
        if host.lower().rstrip(".") in self.names:
            return None
        carried = carried_ipv4(address)
        judged = address if carried is None else carried
        if any(ip in network for network in self.networks for ip in (address, judged)):
            return None
        if judged.is_global and not judged.is_multicast:
            return None
        kind = (
            "loopback"
            if judged.is_loopback
            else "link-local"
            if judged.is_link_local
            else "private"
        )
        named = carried is not None and _ip_literal(host) != address
        where = f"{host} at {address}" if named else host
        return f"{judged} ({where}) is a {kind} address not listed in STATE_MANAGER_OUTBOUND_ALLOW"


IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def carried_ipv4(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | None:
    """The IPv4 address in an IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64 or 6to4
    IPv6 address, or None. `::` and `::1` are IPv6's own unspecified and loopback addresses.
    """
    if address.version == 4:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if (
        address in NAT64
        or address in IPV4_TRANSLATED
        or (address in IPV4_COMPATIBLE and int(address) > 1)
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve_checked(host: str, port: int, allowlist: OutboundAllowlist) -> str:
    """The address to connect to; every address the host resolves to must be allowed."""
    literal = _ip_literal(host)
    addresses = [literal] if literal else _resolve(host, port)
    for address in addresses:
        reason = allowlist.refusal(host, address)
        if reason:
            raise OutboundRefused(f"refused before sending: {reason}")
    first = addresses[0]
    return f"[{first}]" if first.version == 6 else str(first)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address when the URL names one, else None (resolving outside this `except`
    keeps "does not appear to be an IPv4 or IPv6 address" out of a resolve error's chain)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise requests.ConnectionError(f"cannot resolve {host}: {exc.strerror}") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


class GuardedAdapter(HTTPAdapter):
    """An adapter that connects only to allowed addresses, pinned at check time, through
    connections that an overall deadline can cut off (`orders.engine.deadlines`)."""

    def __init__(self, allowlist: OutboundAllowlist, **kwargs: Any):
        self.allowlist = allowlist
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        problem = url_problem(request.url)
        if problem:
            raise UnsendableURL(f'invalid URL "{request.url}": {problem}')
        hostname, port = host_params["host"], host_params["port"]
        request.headers = CaseInsensitiveDict(request.headers or {})
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        default_port = 443 if host_params["scheme"] == "https" else 80
        request.headers["Host"] = (
            host_header if port in (None, default_port) else f"{host_header}:{port}"
        )
        if host_params["scheme"] == "https":
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        host_params["host"] = resolve_checked(hostname, port or default_port, self.allowlist)
        return host_params, pool_kwargs

    def get_connection(self, url, proxies=None):
        raise NotImplementedError("use get_connection_with_tls_context")


_sessions = threading.local()


def session_for(allow: Iterable[str]) -> requests.Session:
    """This thread's pooled session for this allowlist."""
    key = tuple(sorted(allow))
    sessions = getattr(_sessions, "by_allowlist", None)
    if sessions is None:
        sessions = _sessions.by_allowlist = {}
    session = sessions.get(key)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment may bypass the allowlist
        session.max_redirects = MAX_REDIRECTS
        session.headers["User-Agent"] = USER_AGENT
        adapter = GuardedAdapter(OutboundAllowlist.parse(key), pool_maxsize=4)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        sessions[key] = session
    return session


# Requests and results.


@dataclass(frozen=True)
class CallResult:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    duration_ms: int = 0
    error: str = ""
    retry_after: float | None = None
    refused: bool = False
    masked: tuple[str, ...] = ()  # made from credentials for this request: a signature


def send(
    request: CallRequest,
    *,
    allow: Iterable[str],
    cert: tuple[str, str] | None = None,
    verify: str | bool = True,
) -> CallResult:
    """Send a request; every failure (refused, timeout, connection) comes back as a result.
    `cert` is a client certificate's and key's files, `verify` a CA bundle's file."""
    session = session_for(allow)
    started = time.monotonic()
    try:
        response = session.request(
            request.method,
            request.url,
            headers=tracing.outbound_headers(request.headers),
            data=request.content,
            timeout=request.timeout,
            allow_redirects=True,
            stream=True,
            cert=cert,
            verify=verify,
        )
        with response:
            content = _read_capped(response, deadline=started + request.timeout)
    except OutboundRefused as exc:
        return CallResult(error=str(exc), refused=True)
    except requests.Timeout:
        return CallResult(error=f"timed out after {request.timeout:g}s", duration_ms=_ms(started))
    except requests.TooManyRedirects:
        return CallResult(error=f"more than {MAX_REDIRECTS} redirects", duration_ms=_ms(started))
    except URL_ERRORS as exc:  # sent again, it would fail again
        return CallResult(error=_url_error(exc), duration_ms=_ms(started), refused=True)
    except requests.RequestException as exc:
        return CallResult(error=f"connection failed: {_reason(exc)}", duration_ms=_ms(started))
    except ValueError as exc:  # urllib's own checks of a redirect's Location, such as "[::1"
        return CallResult(error=_url_error(exc), duration_ms=_ms(started), refused=True)
    headers = map_strings(dict(response.headers), storable_text)
    return CallResult(
        status=response.status_code,
        headers=headers,
        body=_parse_body(content, headers.get("Content-Type", ""), response.encoding),
        duration_ms=_ms(started),
        retry_after=retry_after_seconds(response.status_code, response.headers.get("Retry-After")),
    )


def _read_capped(response: requests.Response, *, deadline: float) -> bytes:
    """The body, refused past MAX_RESPONSE_BYTES, and cut off at the call's deadline:
    `requests` times each read, so a server dripping a byte at a time would never time out."""
    chunks, size = [], 0
    while chunk := _read_chunk(response):
        if time.monotonic() > deadline:
            raise requests.Timeout("the response took longer than the call's timeout")
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise requests.ConnectionError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_chunk(response: requests.Response) -> bytes:
    """What has arrived of the body, with urllib3's errors as `requests` ones (as
    `iter_content` would give them), so `send` turns each into a failed attempt."""
    try:
        return response.raw.read1(64 * 1024, decode_content=True)
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.Timeout(str(exc)) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.ConnectionError(str(exc)) from exc


def _url_error(exc: Exception) -> str:
    if isinstance(exc, UnsendableURL):
        return str(exc)
    return f"invalid URL: {url_reason(exc)}"


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause, without urllib3's long pool repr. The chain is followed as a
    traceback shows it: `raise ... from None` (our own "cannot resolve" error) ends it."""
    cause: BaseException = exc
    while True:
        inner = cause.__cause__ if cause.__suppress_context__ else cause.__context__
        if inner is None or inner is cause:
            break
        cause = inner
    text = str(cause) or type(cause).__name__
    return text.split(": ", 1)[-1] if "Connection" in text and ": " in text else text


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _parse_body(content: bytes, content_type: str, encoding: str | None) -> Any:
    """JSON when the response is JSON (or says nothing of its type and parses), else text.

    What is kept must be storable and walkable: NUL characters and lone surrogates become
    U+FFFD, and JSON nested deeper than MAX_BODY_DEPTH is kept as its text.
    """
    text = storable_text(content.decode(encoding or "utf-8", errors="replace"))
    if not text:
        return None if not content_type or "json" in content_type else ""
    if "json" in content_type.lower() or not content_type:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if depth(value, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
            return text
        return map_strings(value, storable_text)
    return text


# Deciding and describing.


def response_context(result: CallResult) -> dict:
    """What templates see as `response`."""
    return {"status": result.status, "headers": result.headers, "body": result.body}


def is_success(api_call: Mapping, result: CallResult, context: Mapping) -> bool:
    """`success_when` in the context of the response, or a 2xx status when it is not set."""
    success_when = api_call.get("success_when")
    if not success_when:
        return result.status is not None and 200 <= result.status < 300
    return is_true(success_when, {**context, "response": response_context(result)})


def log_response(result: CallResult, *, secret_values: Iterable[str], max_body_bytes: int) -> dict:
    secret_values = [*secret_values, *result.masked]
    return {
        "status": result.status,
        "headers": mask_headers(result.headers, secret_values),
        "body": truncated(mask(result.body, secret_values), max_body_bytes),
    }
