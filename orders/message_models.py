"""Messages from partners (contract section 11): what was posted, who waits for what, and
the sources that let a partner post its own signed webhooks straight in.

A module of its own beside `orders/models.py`, which imports these so Django finds them
in the `orders` app; they name the order by the string "orders.Order".
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Message(models.Model):
    """A message a partner (or the frontend) sent: a name and a correlation key with data.

    `kept_until` is set when no order waited for it as it came: until then it is taken by
    each order that starts waiting for its name and key. A message that resumed waiting
    orders is not kept for later ones."""

    name = models.CharField(max_length=200)
    key = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    # The sender's own id of the message (a webhook's event id): the same again is a replay.
    sender_id = models.CharField(max_length=200, blank=True, default="")
    # The message source it came through; "" for POST /api/messages/.
    source = models.CharField(max_length=100, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    kept_until = models.DateTimeField(null=True, blank=True)
    matched = models.PositiveIntegerField(default=0)  # the orders it resumed as it came

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "sender_id"],
                condition=~Q(sender_id=""),
                name="message_sender_id",
            )
        ]
        indexes = [
            models.Index(fields=["name", "key", "kept_until"], name="message_kept"),
            models.Index(fields=["received_at"], name="message_received"),
        ]
        permissions = [("post_message", "Can post a message from a partner")]

    def __str__(self) -> str:
        return f"{self.name} {self.key}"


class MessageWait(models.Model):
    """An order's `message` step waiting for a message of `name` and `key` until `until`;
    once received, the message it took (each order takes each message once)."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        RECEIVED = "received"
        TIMED_OUT = "timed out"
        CLOSED = "closed"  # the step is over without it: cancelled, a new run

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="message_waits"
    )
    run = models.PositiveIntegerField()
    step = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    key = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    since = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="waits"
    )
    data = models.JSONField(null=True, blank=True)  # the message as its step sees it
    received_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True)  # who resolved it by hand

    class Meta:
        ordering = ["since", "id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "order"], name="messagewait_takes_once")
        ]
        indexes = [
            models.Index(
                fields=["name", "key"],
                condition=Q(status="waiting"),
                name="messagewait_waiting",
            ),
            models.Index(fields=["order", "run", "step"], name="messagewait_order"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.key} ({self.status})"


class MessageSource(models.Model):
    """Where a partner posts its own webhooks (`POST /api/messages/<name>/`): how to verify
    them and where their name, key and id are in the body."""

    class Scheme(models.TextChoices):
        STRIPE = "stripe"
        HMAC_HEX = "hmac_hex"
        HMAC_BASE64 = "hmac_base64"

    name = models.CharField(max_length=100, unique=True)
    secret = models.CharField(max_length=200)  # a {{ secrets.NAME }} expression only
    signature_header = models.CharField(max_length=100)
    scheme = models.CharField(max_length=16, choices=Scheme.choices)
    message_name = models.CharField(max_length=500)
    key = models.CharField(max_length=500)
    sender_id = models.CharField(max_length=500, blank=True, default="")
    tolerance_seconds = models.PositiveIntegerField(default=300)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_definition(self) -> dict:
        """The source in the contract's JSON."""
        return {
            "name": self.name,
            "secret": self.secret,
            "signature": {"header": self.signature_header, "scheme": self.scheme},
            "message_name": self.message_name,
            "key": self.key,
            "id": self.sender_id,
            "tolerance_seconds": self.tolerance_seconds,
        }
