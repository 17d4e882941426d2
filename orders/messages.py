"""Messages from partners, for the API and the admin alike: a message posted (one service
for `POST /api/messages/`, the message sources and the admin's test), a wait resolved by
hand, and what the admin and the dashboard read of them."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from core.conf import conf
from core.errors import ServiceError, ServiceErrors, join_place
from core.storable import unstorable
from expressions.secrets import load_secrets, mask
from orders import correlation
from orders.models import Message, MessageWait, Order

NAME_MAX_LENGTH = 200
KEY_MAX_LENGTH = 500
SENDER_ID_MAX_LENGTH = 200
REASON_MAX_LENGTH = 1000


class MessageInvalid(ServiceErrors):
    """A message that cannot be taken as it is; each reason names its field."""


class NotWaiting(ServiceError):
    status_code = 409


@dataclass(frozen=True)
class Received:
    """What came of a posted message: how many orders it resumed, and whether it is new."""

    message: Message
    created: bool

    @property
    def matched(self) -> int:
        return self.message.matched


def message_receive(
    *, name: object, key: object, data: object = None, sender_id: object = "", source: str = ""
) -> Received:
    """Record a partner's message and resume every order waiting for its name and key (or
    keep it for those that start waiting within the TTL); the sender's id again changes
    nothing. The data is stored masked of secrets, like the log."""
    data = {} if data is None else data
    sender_id = "" if sender_id is None else sender_id
    errors = _field_errors(name=name, key=key, data=data, sender_id=sender_id)
    if errors:
        raise MessageInvalid(errors)
    message, created = correlation.deliver(
        name=name,
        key=key,
        data=mask(data, load_secrets().values()),
        sender_id=sender_id,
        source=source,
        now=timezone.now(),
        ttl=conf().message_ttl_seconds,
    )
    return Received(message, created)


def wait_resolve_by_hand(*, order: Order, data: object, reason: str, actor: str) -> Order:
    """Resolve the message the order waits for as if it had come with `data`, logged with
    who did it and why (a partner that never sends it, or sent it another way)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("say why the wait is resolved by hand")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValueError(f"the reason is longer than {REASON_MAX_LENGTH} characters")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError("the data must be a JSON object")
    problems = unstorable({"reason": reason, "data": data})
    if problems:
        path, problem = problems[0]
        raise ValueError(f"{join_place('', path)}: {problem}")
    wait = waiting_wait(order)
    if wait is None:
        raise NotWaiting(f"order {order.order_id} is not waiting for a message")
    with transaction.atomic():
        wait = correlation.wait_locked(wait.pk)
        if wait.status != MessageWait.Status.WAITING:
            raise NotWaiting(f"the wait is {wait.status} already")
        correlation.resolve_wait(
            wait,
            data=mask(data, load_secrets().values()),
            actor=actor,
            reason=reason,
            now=timezone.now(),
        )
    order.refresh_from_db()
    return order


def waiting_wait(order: Order) -> MessageWait | None:
    """The wait of the order's current step, if it waits for a message."""
    return (
        MessageWait.objects.filter(
            order=order,
            run=order.run,
            step=order.current_step,
            status=MessageWait.Status.WAITING,
        )
        .order_by("-id")
        .first()
    )


def message_counts() -> dict:
    """The dashboard's: orders waiting for messages, messages kept, the oldest wait."""
    now = timezone.now()
    waits = MessageWait.objects.filter(
        status=MessageWait.Status.WAITING, order__status=Order.Status.WAITING
    )
    return {
        "waiting": waits.values("order_id").distinct().count(),
        "kept": Message.objects.filter(kept_until__gt=now).count(),
        "oldest_wait": waits.aggregate(oldest=Min("since"))["oldest"],
    }


def _field_errors(*, name: object, key: object, data: object, sender_id: object) -> list[str]:
    errors = []
    for field, value, limit in (
        ("name", name, NAME_MAX_LENGTH),
        ("key", key, KEY_MAX_LENGTH),
        ("id", sender_id, SENDER_ID_MAX_LENGTH),
    ):
        if not isinstance(value, str):
            errors.append(f"{field}: must be a string")
        elif not value and field != "id":
            errors.append(f"{field}: must not be empty")
        elif len(value) > limit:
            errors.append(f"{field}: must be at most {limit} characters")
    if not isinstance(data, dict):
        errors.append("data: must be an object")
    for path, problem in unstorable({"name": name, "key": key, "id": sender_id, "data": data}):
        errors.append(f"{join_place('', path)}: {problem}")
    return errors
