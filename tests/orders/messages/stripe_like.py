"""A local Stripe-like payments API: it creates a payment intent and tells State Manager
that it succeeded by posting its own signed webhook (`Stripe-Signature: t=..,v1=..`)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time

import requests

from tests.localserver import LocalServer, Reply

WEBHOOK_SECRET = "whsec_local_test_secret"
SOURCE = {
    "name": "stripe",
    "secret": "{{ secrets.STRIPE_WEBHOOK_SECRET }}",
    "signature": {"header": "Stripe-Signature", "scheme": "stripe"},
    "message_name": "{{ body.type }}",
    "key": "{{ body.data.object.id }}",
    "id": "{{ body.id }}",
    "tolerance_seconds": 300,
}


def stripe_signature(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def succeeded_event(payment_id: str, amount: int, event_id: str) -> bytes:
    event = {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": payment_id, "amount": amount, "status": "succeeded"}},
    }
    return json.dumps(event).encode()


class StripeLike:
    """POST /v1/payment_intents answers the new intent; its webhook goes to `webhook_url`
    before the answer (`webhook_first`) or `delay` seconds after it."""

    def __init__(self, server: LocalServer, webhook_url: str):
        self.server, self.webhook_url = server, webhook_url
        self.webhook_first, self.delay = False, 0.3
        self.answers: list[requests.Response] = []
        self._numbers = itertools.count(1)
        server.route("POST", "/v1/payment_intents", self._create)

    def _create(self, request) -> Reply:
        payment_id = f"pi_{next(self._numbers)}"
        event = succeeded_event(payment_id, request.body["amount"], f"evt_{payment_id}")
        if self.webhook_first:
            self.post_webhook(event)
        else:
            later = threading.Timer(self.delay, self.post_webhook, [event])
            later.daemon = True  # one still to come when the test ends is dropped
            later.start()
        return Reply(200, {"id": payment_id, "status": "processing"})

    def post_webhook(self, body: bytes, signature: str | None = None) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        headers["Stripe-Signature"] = signature or stripe_signature(body)
        answer = requests.post(self.webhook_url, data=body, headers=headers, timeout=10)
        self.answers.append(answer)
        return answer
