"""The operations on orders: create (the webhook), reprocess, cancel.

One function per operation, shared by the API, the admin actions and the commands, so
they can never disagree. Bulk versions walk a selection in chunks of primary keys, with a
fixed number of queries per chunk, and skip any order a worker claims meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from blueprints.models import Blueprint, WorkflowSnapshot
from blueprints.services import workflow_snapshot
from orders.engine.rows import insert_row
from orders.intake import forget_intake, intake_for, payload_errors
from orders.models import Order, StepLog
from orders.transitions import (
    NEW_RUN_FIELDS,
    begin_new_run,
    callbacks_close,
    cancel_orders,
    save_new_runs,
)

CHUNK_SIZE = 500
START_FROM = ("failed", "start")
VERSIONS = ("pinned", "latest")


class OrderError(Exception):
    """An operation on an order that cannot be done; the message says why."""


class UnknownWorkflow(OrderError):
    pass


class PayloadInvalid(OrderError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


class OrderConflict(OrderError):
    """The order id is taken by an order with another workflow or payload."""


class ReprocessRefused(OrderError):
    """The order is not one this reprocess applies to (running, pending, waiting, or
    completed when resuming from the failed step)."""


class OrderRunning(ReprocessRefused):
    pass


class OrderFinished(OrderError):
    pass


class ReprocessInvalid(OrderError):
    """A bad `from` or `version`, or a resume step the latest blueprint no longer has."""


@dataclass(frozen=True)
class BulkResult:
    count: int
    skipped: int


# Create.


def order_create(*, order_id: str, workflow: str, payload: Any) -> tuple[Order, bool]:
    """Create an order pinned to the workflow as it is now; the same request again is a no-op.

    A new order costs one INSERT: a replay (or a duplicate racing this one) is caught by
    the unique order_id rather than looked up first, as a webhook's orders are mostly new.
    """
    try:
        intake = intake_for(workflow)
        if intake is None:
            raise UnknownWorkflow(f'workflow: no workflow "{workflow}"')
        errors = payload_errors(intake.validator, payload)
        if errors:
            raise PayloadInvalid(errors)
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
    )
    try:
        _insert(order)
    except IntegrityError:
        existing = Order.objects.filter(order_id=order_id).first()
        if existing is None:
            forget_intake(workflow)  # not a duplicate: perhaps the snapshot is gone
            raise
        return _replayed(existing, workflow=workflow, payload=payload), False
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

REPROCESSABLE = (Order.Status.FAILED, Order.Status.CANCELLED)


def reprocessable_statuses(*, start_from: str, include_completed: bool) -> tuple[str, ...]:
    """The statuses a reprocess `from` start or failed applies to.

    >>> [str(s) for s in reprocessable_statuses(start_from="failed", include_completed=True)]
    ['failed', 'cancelled']
    >>> [str(s) for s in reprocessable_statuses(start_from="start", include_completed=True)]
    ['failed', 'cancelled', 'completed']
    """
    if start_from == "start" and include_completed:
        return (*REPROCESSABLE, Order.Status.COMPLETED)
    return REPROCESSABLE


def order_reprocess(
    *, order: Order, start_from: str = "failed", version: str = "pinned", actor: str
) -> Order:
    """Begin a new run of a failed or cancelled order (or, from the start, of a completed
    one: naming it is the explicit word); it is pending and due at once."""
    _check_options(start_from, version)
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        if order.status == Order.Status.RUNNING:
            raise OrderRunning(f'order "{order.order_id}" is running; reprocess it when it stops')
        allowed = reprocessable_statuses(start_from=start_from, include_completed=True)
        if order.status not in allowed:
            raise ReprocessRefused(_refusal(order))
        plan = _ReprocessPlan(start_from=start_from, version=version, actor=actor)
        entry = plan.apply(order)
        order.save(update_fields=NEW_RUN_FIELDS)
        entry.save()
        callbacks_close([order.pk])
    return order


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
) -> BulkResult:
    """Reprocess the failed and cancelled orders of a selection (and the completed ones
    when starting over with `include_completed`); skip the others and, on the latest
    version, those whose resume step it no longer has."""
    _check_options(start_from, version)
    statuses = reprocessable_statuses(start_from=start_from, include_completed=include_completed)
    plan = _ReprocessPlan(start_from=start_from, version=version, actor=actor)
    count = skipped = 0
    for pks in _pk_chunks(orders):
        with transaction.atomic():
            rows = list(_locked(pks).filter(status__in=statuses))
            plan.load_snapshots(rows)
            changed, entries = [], []
            for order in rows:
                try:
                    entries.append(plan.apply(order))
                except ReprocessInvalid:
                    continue
                changed.append(order)
            save_new_runs(changed, entries)
        count += len(changed)
        skipped += len(pks) - len(changed)
    return BulkResult(count=count, skipped=skipped)


class _ReprocessPlan:
    """Turns orders into their new run, caching the snapshots a bulk reprocess needs."""

    def __init__(self, *, start_from: str, version: str, actor: str):
        self.start_from = start_from
        self.version = version
        self.actor = actor
        self.now = timezone.now()
        self.step_ids: dict[int, list[str]] = {}
        self.latest: dict[str, WorkflowSnapshot | None] = {}

    def load_snapshots(self, orders: list[Order]) -> None:
        """Read the step ids of the pinned snapshots the chunk needs, in one query."""
        if self.version != "pinned" or self.start_from != "start":
            return
        missing = {order.snapshot_id for order in orders} - self.step_ids.keys()
        for snapshot in WorkflowSnapshot.objects.filter(pk__in=missing):
            self.step_ids[snapshot.pk] = _step_ids(snapshot)

    def apply(self, order: Order) -> StepLog:
        snapshot_id, step_ids = self.target(order)
        if self.start_from == "start":
            step, data = step_ids[0], {}
        else:
            resume = order.resume_point or {}
            step = resume.get("step") or order.current_step
            data = resume["data"] if "data" in resume else order.data
            if step_ids is not None and step not in step_ids:
                raise ReprocessInvalid(
                    f'step "{step}" is not in the latest version of "{order.workflow}"; '
                    "reprocess from the start"
                )
        return begin_new_run(
            order,
            snapshot_id=snapshot_id,
            step=step,
            data=data,
            actor=self.actor,
            request={"from": self.start_from, "version": self.version},
            now=self.now,
        )

    def target(self, order: Order) -> tuple[int, list[str] | None]:
        """The snapshot the new run uses, and its step ids when they are needed."""
        if self.version == "latest":
            snapshot = self.latest_snapshot(order.workflow)
            if snapshot is None:
                raise ReprocessInvalid(f'workflow "{order.workflow}" no longer exists')
            return snapshot.pk, self.step_ids[snapshot.pk]
        if self.start_from == "start":
            if order.snapshot_id not in self.step_ids:
                self.step_ids[order.snapshot_id] = _step_ids(order.snapshot)
            return order.snapshot_id, self.step_ids[order.snapshot_id]
        return order.snapshot_id, None

    def latest_snapshot(self, workflow: str) -> WorkflowSnapshot | None:
        if workflow not in self.latest:
            blueprint = Blueprint.objects.filter(slug=workflow).first()
            snapshot = workflow_snapshot(blueprint=blueprint) if blueprint else None
            if snapshot is not None:
                self.step_ids[snapshot.pk] = _step_ids(snapshot)
            self.latest[workflow] = snapshot
        return self.latest[workflow]


def _check_options(start_from: str, version: str) -> None:
    if start_from not in START_FROM:
        raise ReprocessInvalid(f'from: must be "failed" or "start", not "{start_from}"')
    if version not in VERSIONS:
        raise ReprocessInvalid(f'version: must be "pinned" or "latest", not "{version}"')


# Cancel.


def order_cancel(*, order: Order, actor: str) -> Order:
    """Cancel a pending, waiting or failed order now; ask a running one to stop."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        if order.status in (Order.Status.COMPLETED, Order.Status.CANCELLED):
            raise OrderFinished(f'order "{order.order_id}" is {order.status}')
        cancel_orders([order], actor=actor, now=timezone.now())
    return order


def orders_cancel(*, orders: QuerySet, actor: str) -> BulkResult:
    """Cancel every order of a selection; completed and cancelled ones are skipped."""
    count = skipped = 0
    for pks in _pk_chunks(orders):
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                _locked(pks).exclude(status__in=[Order.Status.COMPLETED, Order.Status.CANCELLED])
            )
            cancel_orders(rows, actor=actor, now=now)
        count += len(rows)
        skipped += len(pks) - len(rows)
    return BulkResult(count=count, skipped=skipped)


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
    """The chunk's rows, locked so no worker claims them while they change (PostgreSQL;
    SQLite's IMMEDIATE transactions serialise writers anyway)."""
    return (
        Order.objects.select_for_update(of=("self",))
        .filter(pk__in=pks)
        .defer("payload")
        .order_by("pk")
    )


def _step_ids(snapshot: WorkflowSnapshot) -> list[str]:
    return [step["id"] for step in snapshot.definition["blueprint"]["steps"]]
