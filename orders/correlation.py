"""Messages meet the orders waiting for them, nothing lost to a race (contract section 11).

Both sides take the lock of the message's correlation (its name and key) inside their
transaction: a message that comes matches every wait committed before it, and a wait
that starts takes every kept message committed before it. Whichever commits second sees
the other, so a message and a wait arriving at the same instant meet exactly once. On
PostgreSQL the lock is a transaction-scoped advisory lock on the correlation's hash; on
SQLite every write transaction is IMMEDIATE, one writer at a time, which is that lock.

An order waits (status `waiting`) in the same transaction as its wait is written, and a
message wakes the orders of the waits it matched in its own transaction, ringing the
orders' doorbell after the commit: the order resumes within a second.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction

from core import doorbell
from orders.bulk_rows import insert_events
from orders.models import Message, MessageWait, Order, StepLog
from orders.transitions import log_entry


def correlation_lock(name: str, key: str) -> None:
    """Hold the correlation's lock until the current transaction ends."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [json.dumps([name, key])],
            )


def message_view(message: Message) -> dict:
    """The message as a step's `save` sees it (`message.*`)."""
    return {
        "name": message.name,
        "key": message.key,
        "id": message.sender_id or None,
        "data": message.data,
        "received_at": message.received_at.isoformat(),
    }


def start_wait(
    *, order_pk: int, run: int, step: str, name: str, key: str, until: datetime, now: datetime
) -> MessageWait:
    """The wait of an order's step, in the caller's transaction: received at once from the
    oldest kept message of that name and key this order has not taken yet, else waiting."""
    correlation_lock(name, key)
    kept = (
        Message.objects.filter(name=name, key=key, kept_until__gt=now)
        .exclude(waits__order_id=order_pk)
        .order_by("received_at", "pk")
        .first()
    )
    wait = MessageWait(
        order_id=order_pk, run=run, step=step, name=name, key=key, since=now, until=until
    )
    if kept is not None:
        _take(wait, kept, now=now)
    wait.save()
    return wait


def wait_locked(wait_pk: int) -> MessageWait:
    """A wait as it stands under its correlation's lock (a wait looked at again)."""
    wait = MessageWait.objects.get(pk=wait_pk)
    correlation_lock(wait.name, wait.key)
    return MessageWait.objects.select_for_update().get(pk=wait_pk)


def deliver(
    *, name: str, key: str, data: dict, sender_id: str, source: str, now: datetime, ttl: int
) -> tuple[Message, bool]:
    """Record a message and wake every order waiting for its name and key; kept for `ttl`
    seconds when none waits. (message, False) when the sender's id came before: the
    message that came then, nothing changed."""
    with transaction.atomic():
        correlation_lock(name, key)
        if sender_id:
            earlier = Message.objects.filter(source=source, sender_id=sender_id).first()
            if earlier is not None:
                return earlier, False
        message = Message(
            name=name, key=key, data=data, sender_id=sender_id, source=source, received_at=now
        )
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:  # the same id under another name or key, this instant
            return Message.objects.get(source=source, sender_id=sender_id), False
        waits = list(
            MessageWait.objects.select_for_update()
            .filter(name=name, key=key, status=MessageWait.Status.WAITING, until__gt=now)
            .order_by("pk")
        )
        for wait in waits:
            _take(wait, message, now=now)
        MessageWait.objects.bulk_update(waits, ["status", "message", "data", "received_at"])
        message.matched = len(waits)
        message.kept_until = None if waits else now + timedelta(seconds=ttl)
        message.save(update_fields=["matched", "kept_until"])
        wake_waiting(waits, now=now)
    return message, True


def resolve_wait(wait: MessageWait, *, data: dict, actor: str, reason: str, now: datetime) -> None:
    """Support resolves a waiting wait by hand, as if a message with `data` had come."""
    wait.status = MessageWait.Status.RECEIVED
    wait.data = {"name": wait.name, "key": wait.key, "id": None, "data": data}
    wait.data["received_at"] = now.isoformat()
    wait.received_at = now
    wait.actor = actor
    wait.save(update_fields=["status", "data", "received_at", "actor"])
    wake_waiting([wait], now=now, actor=actor, reason=reason)


def wake_waiting(
    waits: list[MessageWait], *, now: datetime, actor: str = "", reason: str = ""
) -> None:
    """The orders of these received waits, if they wait, are due at once; each logged."""
    if not waits:
        return
    pks = [wait.order_id for wait in waits]
    insert_events(pks, now=now, status=Order.Status.PENDING, where_status=(Order.Status.WAITING,))
    woken = Order.objects.filter(pk__in=pks, status=Order.Status.WAITING).update(
        status=Order.Status.PENDING, due_at=now, updated_at=now
    )
    StepLog.objects.bulk_create(
        log_entry(
            order_pk=wait.order_id,
            run=wait.run,
            step=wait.step,
            kind=StepLog.Kind.MESSAGE,
            outcome=StepLog.Outcome.SUCCEEDED,
            request={"reason": reason} if reason else None,
            response={"note": _received(wait), "message_id": wait.message_id},
            actor=actor,
        )
        for wait in waits
    )
    if woken:
        doorbell.ring(doorbell.ORDERS)


def _take(wait: MessageWait, message: Message, *, now: datetime) -> None:
    wait.status = MessageWait.Status.RECEIVED
    wait.message = message
    wait.data = message_view(message)
    wait.received_at = now


def _received(wait: MessageWait) -> str:
    how = f" (resolved by hand by {wait.actor})" if wait.actor else ""
    return f"message {wait.name} for key {wait.key} received{how}"
