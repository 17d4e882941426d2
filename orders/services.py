"""The operations on orders: create (the webhook), reprocess, cancel.

One function per operation, shared by the API, the admin actions and the commands, so
they can never disagree. Bulk versions act on a chunk of orders at a time with a fixed
number of set-based statements (orders/transitions.py), and skip any order a worker
claims meanwhile; orders/jobs.py runs them over a frozen selection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core import doorbell
from core.errors import ServiceError, ServiceErrors
from orders.intake import concurrency_key_errors, forget_intake, intake_for, payload_errors
from orders.models import Order
from orders.reprocess import (  # noqa: F401  (the services' errors, raised by the plan)
    OrderRunning,
    ReprocessInvalid,
    ReprocessPlan,
    ReprocessRefused,
    StepNotReached,
)
from orders.rows import insert_row
from orders.transitions import cancel_locked, lock_orders

CHUNK_SIZE = 1000


class OrderError(ServiceError):
    """An operation on an order that cannot be done; the message says why (a 400, unless
    the subclass says otherwise)."""


class UnknownWorkflow(OrderError):
    pass


class PayloadInvalid(ServiceErrors, OrderError):
    joiner = "\n"


class OrderConflict(OrderError):
    """The order id is taken by an order with another workflow or payload."""

    status_code = 409


class OrderFinished(OrderError):
    status_code = 409


@dataclass(frozen=True)
class BulkResult:
    """Orders acted on and orders left as they were."""

    count: int
    skipped: int

    def __add__(self, other: BulkResult) -> BulkResult:
        return BulkResult(count=self.count + other.count, skipped=self.skipped + other.skipped)


# Create.


def order_create(
    *, order_id: str, workflow: str, payload: Any, trace_parent: str = ""
) -> tuple[Order, bool]:
    """Create an order pinned to the workflow as it is now; the same request again is a no-op.
    `trace_parent` is the W3C traceparent its turns' spans continue.

    A new order costs one INSERT: a replay (or a duplicate racing this one) is caught by
    the unique order_id rather than looked up first, as a webhook's orders are mostly new.
    """
    try:
        intake = intake_for(workflow)
        if intake is None:
            raise UnknownWorkflow(f'workflow: no workflow "{workflow}"')
        created_at = timezone.now()
        errors = payload_errors(intake.validator, payload)
        key, key_errors = concurrency_key_errors(
            "" if errors else intake.concurrency_key,
            payload=payload,
            order_id=order_id,
            workflow=workflow,
            created_at=created_at,
        )
        if errors or key_errors:
            raise PayloadInvalid(errors + key_errors)
    except (UnknownWorkflow, PayloadInvalid):
        # An order posted before its workflow was removed or its schema tightened is
        # still the same request again.
        existing = Order.objects.filter(order_id=order_id).first()
        if existing is None:
            raise
        return _replayed(existing, workflow=workflow, payload=payload), False
    order = Order(
        order_id=order_id,
        workflow=workflow,
        snapshot=intake.snapshot,
        payload=payload,
        current_step=intake.first_step,
        concurrency_key=key,
        trace_parent=trace_parent,
        created_at=created_at,
    )
    try:
        _insert(order)
    except IntegrityError:
        existing = Order.objects.filter(order_id=order_id).first()
        if existing is None:
            forget_intake(workflow)  # not a duplicate: perhaps the snapshot is gone
            raise
        return _replayed(existing, workflow=workflow, payload=payload), False
    doorbell.ring(doorbell.ORDERS)
    return order, True


def _insert(order: Order) -> None:
    """The engine's INSERT (SQL built once, not compiled by the ORM on each post). Outside
    a transaction it commits by itself, in one round trip; inside one, a savepoint keeps
    a duplicate's error from breaking the caller's transaction."""
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            insert_row(order)
    else:
        insert_row(order)


def _replayed(order: Order, *, workflow: str, payload: Any) -> Order:
    if order.workflow != workflow or not same_json(order.payload, payload):
        raise OrderConflict(f'order "{order.order_id}" exists with another workflow or payload')
    return order


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: unlike `==` in Python, `1`, `1.0` and `true` differ.

    >>> same_json({"a": 1, "b": [True]}, {"b": [True], "a": 1}), same_json({"a": 1}, {"a": 1.0})
    (True, False)
    """
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(
        _stored_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _stored_numbers(value: Any) -> Any:
    """Floats as PostgreSQL's jsonb gives them back: a whole number written with an
    exponent (`1e300`) comes back as an integer, one without (`2.0`) as a float."""
    if isinstance(value, float) and value.is_integer() and "e" in repr(value):
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _stored_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stored_numbers(item) for item in value]
    return value


# Reprocess.
#
# Reprocessing repeats real side effects (charges, mails), so it applies only to orders
# that stopped short: failed and cancelled ones. A completed order is run again only from
# the start and only when asked by name (one order) or with `include_completed` (bulk).
# Pending, waiting and running orders are left alone (cancel first).


def order_reprocess(
    *, order: Order, start_from: str = "failed", version: str = "pinned", actor: str
) -> Order:
    """Begin a new run of a failed or cancelled order (or, from the start, of a completed
    one: naming it is the explicit word); it is pending and due at once."""
    plan = ReprocessPlan(
        start_from=start_from, version=version, include_completed=True, actor=actor
    )
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).filter(pk=order.pk)
        order = locked.get()
        if order.status == Order.Status.RUNNING:
            raise OrderRunning(f'order "{order.order_id}" is running; reprocess it when it stops')
        if order.status not in plan.statuses:
            raise ReprocessRefused(_refusal(order))
        plan.begin(plan.rows(locked), strict=True)
    return Order.objects.get(pk=order.pk)


def _refusal(order: Order) -> str:
    if order.status == Order.Status.COMPLETED:
        return (
            f'order "{order.order_id}" is completed: only a reprocess from the start runs it again'
        )
    return f'order "{order.order_id}" is {order.status}: cancel it first to reprocess it'


def orders_reprocess(
    *,
    orders: QuerySet,
    start_from: str = "failed",
    version: str = "pinned",
    include_completed: bool = False,
    actor: str,
    progress: Callable[[BulkResult], None] | None = None,
) -> BulkResult:
    """Reprocess the failed and cancelled orders of a selection (and the completed ones
    when starting over with `include_completed`); skip the others and, on the latest
    version, those whose resume step it no longer has. `progress` hears the counts so far
    after each chunk."""
    plan = ReprocessPlan(
        start_from=start_from, version=version, include_completed=include_completed, actor=actor
    )
    result = BulkResult(count=0, skipped=0)
    for pks in _pk_chunks(orders):
        with transaction.atomic():
            result += reprocess_chunk(pks, plan=plan)
        if progress is not None:
            progress(result)
    return result


def reprocess_chunk(pks: list[int], *, plan: ReprocessPlan) -> BulkResult:
    """Reprocess the orders of `pks` the plan applies to, in the caller's transaction: a
    fixed number of statements however many there are. Orders a worker holds this
    instant are skipped."""
    count = plan.begin(plan.rows(_locked(pks)))
    return BulkResult(count=count, skipped=len(pks) - count)


# Cancel.

UNCANCELLABLE = (Order.Status.COMPLETED, Order.Status.CANCELLED)


def order_cancel(*, order: Order, actor: str) -> Order:
    """Cancel a pending, waiting or failed order now; ask a running one to stop."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        if order.status in UNCANCELLABLE:
            raise OrderFinished(f'order "{order.order_id}" is {order.status}')
        cancel_locked([(order.pk, order.status)], actor=actor, now=timezone.now())
    return Order.objects.get(pk=order.pk)


def orders_cancel(*, orders: QuerySet, actor: str) -> BulkResult:
    """Cancel every order of a selection; completed and cancelled ones are skipped."""
    result = BulkResult(count=0, skipped=0)
    for pks in _pk_chunks(orders):
        with transaction.atomic():
            result += cancel_chunk(pks, actor=actor)
    return result


def cancel_chunk(pks: list[int], *, actor: str) -> BulkResult:
    """Cancel the unfinished orders of `pks`, in the caller's transaction; orders a worker
    holds this instant are skipped."""
    rows = list(_locked(pks).exclude(status__in=UNCANCELLABLE).values_list("pk", "status"))
    cancel_locked(rows, actor=actor, now=timezone.now())
    return BulkResult(count=len(rows), skipped=len(pks) - len(rows))


# Shared.


def _pk_chunks(orders: QuerySet) -> Iterator[list[int]]:
    """The selection's primary keys, CHUNK_SIZE at a time, by keyset (never all in memory)."""
    if orders.query.is_sliced:
        orders = Order.objects.filter(pk__in=orders.values("pk"))
    pks = orders.order_by("pk").values_list("pk", flat=True)
    last = 0
    while True:
        chunk = list(pks.filter(pk__gt=last)[:CHUNK_SIZE])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def _locked(pks: list[int]) -> QuerySet:
    """The chunk's rows, locked so no worker claims them while they change."""
    return lock_orders(Order.objects.filter(pk__in=pks).defer("payload"))
