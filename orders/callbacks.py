"""Resume an order waiting at a `wait_for_callback` step when the outside system posts back,
or when support resolves the wait by hand."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import ServiceError
from core.storable import unstorable
from expressions.secrets import load_secrets, mask
from orders.models import Callback, Order
from orders.transitions import wake_for_callback


class CallbackError(ServiceError):
    pass


class CallbackNotFound(CallbackError):
    """No callback has this token."""

    status_code = 404
    detail = "No callback has this token."  # the message is the token: not for the caller


class CallbackUsed(CallbackError):
    """The token was used already, or its wait timed out."""

    status_code = 409


class CallbackOutcomeInvalid(CallbackError, ValueError):
    """An outcome other than "success" or "failure"."""

    @property
    def reasons(self) -> list[str]:
        return [f"outcome: {self}"]


REASON_MAX_LENGTH = 1000
# The log keeps a callback's data up to this many bytes of UTF-8 JSON.
CALLBACK_LOG_MAX_BYTES = 4096


def callback_receive(
    *, token: str, outcome: str, data: dict | None, actor: str = "", reason: str = ""
) -> Order:
    """Record a callback's outcome once and make its order due at once; `actor` and
    `reason` name who resolved it by hand, and why.

    The order row is only touched when it is `waiting`: an order still in the turn that
    sent the call sees the resolved callback itself before it would start to wait.
    """
    if outcome not in ("success", "failure"):
        raise CallbackOutcomeInvalid('outcome must be "success" or "failure"')
    # The outside system may echo a secret it was sent; it is stored masked like the log.
    data = mask(data or {}, load_secrets().values())
    now = timezone.now()
    expired = Callback.objects.filter(
        token=token, status=Callback.Status.WAITING, expires_at__lte=now
    ).update(status=Callback.Status.EXPIRED)
    if expired:
        raise CallbackUsed("this callback's wait timed out")
    with transaction.atomic():
        callback = (
            Callback.objects.select_for_update().select_related("order").filter(token=token).first()
        )
        if callback is None:
            raise CallbackNotFound(token)
        if callback.status != Callback.Status.WAITING:
            raise CallbackUsed(f"this callback was already {callback.status}")
        if callback.expires_at <= now:
            raise CallbackUsed("this callback's wait timed out")
        stale = _step_is_over(callback)
        if stale:
            callback.status = Callback.Status.EXPIRED
            callback.save(update_fields=["status"])
    if stale:
        raise CallbackUsed(stale)
    with transaction.atomic():
        callback = Callback.objects.select_for_update().select_related("order").get(pk=callback.pk)
        if callback.status != Callback.Status.WAITING:
            raise CallbackUsed(f"this callback was already {callback.status}")
        callback.status = (
            Callback.Status.SUCCEEDED if outcome == "success" else Callback.Status.FAILED
        )
        callback.data = data
        callback.used_at = now
        callback.save(update_fields=["status", "data", "used_at"])
        wake_for_callback(
            callback,
            outcome=outcome,
            response={"outcome": outcome, "data": _truncated(callback.data)},
            now=now,
            actor=actor,
            reason=reason,
        )
    callback.order.refresh_from_db()
    return callback.order


def callback_resolve_by_hand(
    *, order: Order, outcome: str, reason: str, actor: str, data: dict | None = None
) -> Order:
    """Resolve the callback the order waits for as if the outside system had posted it
    (`data` as its posted data), logged with who did it and why: for a partner that never
    answers, or answered another way."""
    reason = reason.strip()
    if not reason:
        raise ValueError("say why the callback is resolved by hand")
    if len(reason) > REASON_MAX_LENGTH:
        raise ValueError(f"the reason is longer than {REASON_MAX_LENGTH} characters")
    if not isinstance(data if data is not None else {}, dict):
        raise ValueError("the data must be a JSON object")
    problems = unstorable({"reason": reason, "data": data})
    if problems:
        path, problem = problems[0]
        raise ValueError(f"{'.'.join(str(part) for part in path) or 'the input'}: {problem}")
    callback = waiting_callback(order)
    if callback is None:
        raise CallbackUsed(f"order {order.order_id} is not waiting for a callback")
    return callback_receive(
        token=callback.token, outcome=outcome, data=data, actor=actor, reason=reason
    )


def waiting_callback(order: Order) -> Callback | None:
    """The callback the order's current step waits for, if it waits for one."""
    return (
        Callback.objects.filter(
            order=order, run=order.run, step=order.current_step, status=Callback.Status.WAITING
        )
        .order_by("-id")
        .first()
    )


def _step_is_over(callback: Callback) -> str:
    """Why the step this callback belongs to no longer waits for it, or "" when it does."""
    order = callback.order
    if order.status in Order.FINISHED:
        return f"order {order.order_id} is {order.status}"
    if order.run != callback.run or order.current_step != callback.step:
        return f'the step "{callback.step}" of run {callback.run} no longer waits for this callback'
    return ""


def _truncated(data: Any, limit: int = CALLBACK_LOG_MAX_BYTES) -> Any:
    """`data` as it is when its JSON takes at most `limit` bytes in UTF-8; else the start of
    that JSON text and a note of its size, cut so that both, stored as one JSON string
    (escapes counted), still take at most `limit` bytes."""
    size = _json_bytes(data)
    if size <= limit:
        return data
    note = f"… [truncated, {size} bytes in all]"
    room = limit - _json_bytes(note)  # the string's quotes counted once, here
    kept = []
    for char in json.dumps(data, ensure_ascii=False):
        room -= _json_bytes(char) - 2
        if room < 0:
            break
        kept.append(char)
    return "".join(kept) + note


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())
