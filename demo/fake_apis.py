"""Offline stand-ins for the shop, payments, shipping, mail and ops APIs of the demo.

Run `python demo/fake_apis.py [--port 8001]`; the demo's API calls reach it through
the secret `DEMO_API_URL` (env `STATE_MANAGER_SECRET_DEMO_API_URL`).

What the order payload decides:
- `shop.quote`: total = qty x the sku's unit price (see PRICES); an unknown sku is a 404.
  A total over 1000 sends the order to review, otherwise to charge.
- `payments.charge`: an email containing "decline" is refused with 402 (not retried),
  so the order ends at reject. It wants a bearer token from the payments' OAuth2 token
  endpoint (`/payments/oauth/token`, the client-credentials grant with any client id and
  secret sent as Basic credentials; tokens last 300 s): any other is a 401. The demo's
  `payments` connection gets and reuses them.
- `shipping.create` returns a list of tracking numbers; `mail.send` and `ops.ticket` accept.

A request repeated with the same `Idempotency-Key` gets the first answer again, as a
real payment API would, so re-runs after a crash never charge twice.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

PRICES = {"TEE": 25, "MUG": 12, "BOOK": 40, "LAPTOP": 1200}


def _ref(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def quote(body: dict, headers: dict) -> tuple[int, Any]:
    sku, qty = body.get("sku"), body.get("qty")
    if sku not in PRICES:
        return 404, {"error": f"unknown sku {sku!r}"}
    if not isinstance(qty, int) or qty < 1:
        return 400, {"error": "qty must be a positive integer"}
    return 200, {"sku": sku, "qty": qty, "unit_price": PRICES[sku], "total": PRICES[sku] * qty}


TOKEN_SECONDS = 300
_tokens: dict[str, float] = {}  # access token -> when it expires
_tokens_lock = threading.Lock()


def token(body: dict, headers: dict) -> tuple[int, Any]:
    """The client-credentials grant (RFC 6749 section 4.4), client credentials as Basic."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    try:
        client_id, _, client_secret = base64.b64decode(credentials).decode().partition(":")
    except ValueError:
        client_id = client_secret = ""
    if scheme != "Basic" or not client_id or not client_secret:
        return 401, {"error": "invalid_client"}
    if body.get("grant_type") != "client_credentials":
        return 400, {"error": "unsupported_grant_type"}
    issued = "demo_at_" + secrets.token_urlsafe(18)
    with _tokens_lock:
        _tokens[issued] = time.time() + TOKEN_SECONDS
    return 200, {"access_token": issued, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}


def charge(body: dict, headers: dict) -> tuple[int, Any]:
    bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
    with _tokens_lock:
        if _tokens.get(bearer, 0) < time.time():
            return 401, {"error": "invalid_token"}
    if "decline" in str(body.get("email", "")).lower():
        return 402, {"error": "card declined"}
    key = headers.get("idempotency-key", json.dumps(body, sort_keys=True))
    return 201, {"id": _ref("ch", key), "amount": body.get("amount"), "status": "succeeded"}


def ship(body: dict, headers: dict) -> tuple[int, Any]:
    key = headers.get("idempotency-key", json.dumps(body, sort_keys=True))
    return 201, {"id": _ref("shp", key), "tracking": [_ref("TRK", key).upper()]}


def mail(body: dict, headers: dict) -> tuple[int, Any]:
    if "@" not in str(body.get("to", "")):
        return 400, {"error": "to: not an email address"}
    return 202, {"id": _ref("msg", json.dumps(body, sort_keys=True)), "queued": True}


def ticket(body: dict, headers: dict) -> tuple[int, Any]:
    key = headers.get("idempotency-key", json.dumps(body, sort_keys=True))
    return 201, {"id": _ref("OPS", key).upper(), "queue": "order-review"}


ROUTES = {
    "/shop/quote": quote,
    "/payments/oauth/token": token,
    "/payments/charges": charge,
    "/shipping/shipments": ship,
    "/mail/messages": mail,
    "/ops/tickets": ticket,
}


class FakeApis(ThreadingHTTPServer):
    """The fake APIs on one port; `requests` counts calls per path for tests."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), FakeApiHandler)
        self.lock = threading.Lock()
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: dict[str, int] = {}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, body: Any, headers: dict) -> tuple[int, Any]:
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            key = headers.get("idempotency-key")
            if key and (path, key) in self.answers:
                return self.answers[(path, key)]
        route = ROUTES.get(path)
        if route is None:
            return 404, {"error": f"no such endpoint {path}"}
        if not isinstance(body, dict):
            return 400, {"error": "expected a JSON object"}
        status, reply = route(body, headers)
        if key:
            with self.lock:
                self.answers[(path, key)] = (status, reply)
        return status, reply


class FakeApiHandler(BaseHTTPRequestHandler):
    # Without this every response waits ~40 ms on the client's delayed ACK.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: FakeApis

    def log_message(self, format: str, *args) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            body = dict(parse_qsl(raw.decode(errors="replace")))
        else:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, reply = self.server.answer(self.path.split("?")[0], body, headers)
        self._send(status, reply)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/":
            self._send(200, {"endpoints": sorted(ROUTES), "prices": PRICES})
        else:
            self._send(405, {"error": "use POST"})

    def _send(self, status: int, reply: Any) -> None:
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    options = parser.parse_args()
    server = FakeApis(options.host, options.port)
    server.verbose = options.verbose
    print(f"Fake demo APIs on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
