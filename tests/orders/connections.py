"""Connections for engine tests, and a partner's OAuth2 token endpoint in front of its API."""

from __future__ import annotations

import base64
import threading
import time
from urllib.parse import parse_qs

from connections.models import Connection
from orders.models import Order
from tests.localserver import LocalServer, Reply
from tests.orders.workflows import api_call, make_order

CLIENT_ID = "shop-client"
CLIENT_SECRET = "cl1ent-s3cret+/="
API_KEY = "k3y-abc/+="


def connection(name: str, kind: str, **settings) -> Connection:
    return Connection.objects.create(name=name, kind=kind, settings=settings)


def one_call_order(url: str, connection_name: str, **definition) -> Order:
    call = api_call("c", url, connection=connection_name, **definition)
    return make_order([{"id": "c", "call": "c"}], [call])


class TokenServer:
    """An OAuth2 token endpoint issuing short-lived tokens, in front of an API that
    refuses a token it did not issue, one expired or one revoked with a 401."""

    def __init__(self, server: LocalServer, *, lifetime: float = 2.0) -> None:
        self.server, self.lifetime = server, lifetime
        self.issued: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.expired_calls = 0
        self.late: list[float] = []
        self.lock = threading.Lock()
        server.route("POST", "/oauth/token", self.token)
        server.route("POST", "/api/orders", self.api)

    def token(self, request) -> Reply:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = parse_qs(request.raw.decode())
        if request.headers.get("Authorization") != f"Basic {expected}":
            return Reply(401, {"error": "invalid_client"})
        if form.get("grant_type") != ["client_credentials"]:
            return Reply(400, {"error": "unsupported_grant_type"})
        with self.lock:
            token = f"tok-{len(self.issued) + 1}-{time.monotonic_ns()}"
            self.issued[token] = time.monotonic() + self.lifetime
        return Reply(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        )

    def api(self, request) -> Reply:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            until = self.issued.get(token)
            if until is None or token in self.revoked:
                return Reply(401, {"error": "invalid_token"})
            if time.monotonic() > until:
                self.expired_calls += 1
                self.late.append(round(time.monotonic() - until, 3))
                return Reply(401, {"error": "expired_token"})
        return Reply(200, {"ok": True, "authorization": request.headers["Authorization"]})

    @property
    def fetched(self) -> int:
        return len(self.server.requests_to("/oauth/token"))
