"""What an order that is not finished waits for, in a few words: the order list's
"waiting for" column and the order page's hold.

The reasons are tried in REASONS' order and the first that applies is the answer; a new
kind of wait is one more entry there. Each reads an order's `WaitFacts`: the few values
of its row it needs (the list annotates them out of `step_state`, the page reads them
from the order), so the list never loads whole step states.

>>> waiting_for(WaitFacts(status="waiting", held_host="api.example", held_kind="paused")).text
'host api.example (paused)'
>>> waiting_for(WaitFacts(status="waiting", callback=True)).text
'callback'
>>> waiting_for(WaitFacts(status="completed")) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef
from django.db.models.fields.json import KT
from django.utils.timezone import localtime

from blueprints.models import Blueprint
from orders.models import Order


@dataclass(frozen=True)
class WaitFacts:
    status: str
    due_at: datetime | None = None
    held_host: str | None = None
    held_kind: str | None = None
    message_name: str | None = None
    callback: bool = False
    blueprint_paused: bool = False


@dataclass(frozen=True)
class WaitingFor:
    kind: str  # each reason's name: "blueprint", "host", "message", ...
    text: str  # what the list shows


def _paused_blueprint(facts: WaitFacts) -> WaitingFor | None:
    # Claims leave a paused blueprint's orders due, whatever their step waits for.
    if facts.blueprint_paused and facts.status in (Order.Status.PENDING, Order.Status.WAITING):
        return WaitingFor("blueprint", "blueprint paused")
    return None


def _host(facts: WaitFacts) -> WaitingFor | None:
    if facts.status == Order.Status.WAITING and facts.held_host:
        return WaitingFor("host", f"host {facts.held_host} ({facts.held_kind or 'held'})")
    return None


def _message(facts: WaitFacts) -> WaitingFor | None:
    if facts.status == Order.Status.WAITING and facts.message_name:
        return WaitingFor("message", f"message {facts.message_name}")
    return None


def _callback(facts: WaitFacts) -> WaitingFor | None:
    if facts.status == Order.Status.WAITING and facts.callback:
        return WaitingFor("callback", "callback")
    return None


def _retry(facts: WaitFacts) -> WaitingFor | None:
    if facts.status == Order.Status.WAITING:
        when = f" at {localtime(facts.due_at):%H:%M:%S}" if facts.due_at else ""
        return WaitingFor("retry", f"retry due{when}")
    return None


def _turn(facts: WaitFacts) -> WaitingFor | None:
    if facts.status == Order.Status.PENDING:
        return WaitingFor("turn", "next batch")
    return None


# First match wins; a new kind of wait goes in here, before `_retry`.
REASONS: list[Callable[[WaitFacts], WaitingFor | None]] = [
    _paused_blueprint,
    _host,
    _message,
    _callback,
    _retry,
    _turn,
]


def waiting_for(facts: WaitFacts) -> WaitingFor | None:
    """What the order waits for; None when it waits for nothing (running or finished)."""
    for reason in REASONS:
        found = reason(facts)
        if found is not None:
            return found
    return None


# The list's annotations: the values of `step_state` the reasons read, not the whole of it.
LIST_ANNOTATIONS = {
    "wait_blueprint_paused": Exists(
        Blueprint.objects.filter(slug=OuterRef("workflow"), paused_at__isnull=False)
    ),
    "wait_held_host": KT("step_state__held__host"),
    "wait_held_kind": KT("step_state__held__kind"),
    "wait_message": KT("step_state__message__name"),
    "wait_callback": KT("step_state__callback__token"),
}


def facts_of_row(order) -> WaitFacts:
    """The facts of an order of the list, read with LIST_ANNOTATIONS."""
    return WaitFacts(
        status=order.status,
        due_at=order.due_at,
        held_host=order.wait_held_host,
        held_kind=order.wait_held_kind,
        message_name=order.wait_message,
        callback=bool(order.wait_callback),
        blueprint_paused=order.wait_blueprint_paused,
    )


def facts_of(order: Order, *, blueprint_paused: bool) -> WaitFacts:
    """The facts of one whole order (its page)."""
    state = order.step_state if isinstance(order.step_state, dict) else {}
    held = state.get("held") if isinstance(state.get("held"), dict) else {}
    message = state.get("message") if isinstance(state.get("message"), dict) else {}
    return WaitFacts(
        status=order.status,
        due_at=order.due_at,
        held_host=held.get("host"),
        held_kind=held.get("kind"),
        message_name=message.get("name"),
        callback=isinstance(state.get("callback"), dict),
        blueprint_paused=blueprint_paused,
    )
