"""Edit what an order was given or saved (contract section 5, "Edit, then reprocess").

Support corrects a mistyped address or a wrong SKU instead of asking the frontend to
post the order again. An edit replaces `payload` or `data` whole, or sets and unsets
dotted paths in them (`payload.address.zip`, `data.items.0.sku`); it is checked against
the pinned version's `input_schema`, renders the concurrency key again, and is logged
with who, why and every changed path before and after (secrets masked). The order's row
is locked for the edit, so a worker's claim comes before it or after it, never between.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from jsonschema import Draft202012Validator

from blueprints.models import WorkflowSnapshot
from core import doorbell
from core.errors import ServiceError, ServiceErrors
from expressions.secrets import load_secrets, mask
from orders.bulk_rows import update_orders
from orders.dotted_paths import MISSING as _MISSING
from orders.dotted_paths import data_edit, replay_data_edit, set_path, unset_path
from orders.intake import concurrency_key_errors, payload_errors
from orders.models import Order, StepLog
from orders.services import BulkResult
from orders.transitions import lock_orders, log_entry

EDITABLE = (
    Order.Status.FAILED,
    Order.Status.CANCELLED,
    Order.Status.PENDING,
    Order.Status.WAITING,
)
ROOTS = ("payload", "data")
MAX_REASON = 1000


class EditInvalid(ServiceErrors):
    """The edit is malformed, or leaves a payload its input schema refuses (a 400)."""

    joiner = "\n"


class EditRefused(ServiceError):
    """The order's status allows no edit (running, completed): a 409."""

    status_code = 409


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any

    def as_json(self) -> dict:
        shown = {"path": self.path}
        if self.before is not _MISSING:
            shown["before"] = self.before
        if self.after is not _MISSING:
            shown["after"] = self.after
        return shown


@dataclass
class Edited:
    """What an edit makes of one order, before it is written."""

    order: Order
    payload: Any
    data: dict
    resume_point: dict
    concurrency_key: str
    changes: list[Change]
    saved: dict | None  # what the edit did to the data, kept to replay (orders/step_data.py)


class EditPlan:
    """One edit, checked once, applied to one order or to a chunk of a bulk edit's."""

    def __init__(
        self,
        *,
        reason: str,
        actor: str,
        payload: Any = _MISSING,
        data: Any = _MISSING,
        set_paths: Mapping[str, Any] | None = None,
        unset_paths: Iterable[str] | None = None,
    ):
        self.reason = (reason or "").strip()
        problems = _request_problems(self.reason, payload, data, set_paths, unset_paths)
        if problems:
            raise EditInvalid(problems)
        self.actor = actor
        self.payload, self.data = payload, data
        self.set_paths = dict(set_paths or {})
        self.unset_paths = list(unset_paths or ())
        self.validators: dict[int, Draft202012Validator | None] = {}

    def apply(self, order: Order) -> Edited:
        """The order as the edit leaves it; raises EditRefused or EditInvalid."""
        if order.status not in EDITABLE:
            raise EditRefused(
                f'order "{order.order_id}" is {order.status}: only failed, cancelled, '
                "pending and waiting orders can be edited"
            )
        edited = {
            "payload": copy.deepcopy(order.payload if self.payload is _MISSING else self.payload),
            "data": copy.deepcopy(order.data if self.data is _MISSING else self.data),
        }
        problems = _apply_paths(edited, self.set_paths, self.unset_paths)
        if not isinstance(edited["data"], dict):
            problems.append("data: must be an object")
        blueprint = order.snapshot.definition["blueprint"]
        problems += payload_errors(self.validator(order.snapshot_id, blueprint), edited["payload"])
        if problems:
            raise EditInvalid(problems)
        before = {"payload": order.payload, "data": order.data}
        changes = [
            change for root in ROOTS for change in _differences(root, before[root], edited[root])
        ]
        if not changes:
            raise EditInvalid(["the edit changes nothing"])
        key, key_problems = concurrency_key_errors(
            blueprint.get("concurrency_key") or "",
            payload=edited["payload"],
            order_id=order.order_id,
            workflow=order.workflow,
            created_at=order.created_at,
        )
        if key_problems:
            raise EditInvalid(key_problems)
        saved = data_edit(
            edited["data"], self.set_paths, self.unset_paths, replaced=self.data is not _MISSING
        )
        resume_point = order.resume_point
        if saved and isinstance(resume_point.get("data"), dict):
            # A reprocess from the failed step resumes with this data: it gets the edit too.
            resume_point = {**resume_point, "data": replay_data_edit(resume_point["data"], saved)}
        return Edited(order, edited["payload"], edited["data"], resume_point, key, changes, saved)

    def validator(self, snapshot_pk: int, blueprint: Mapping) -> Draft202012Validator | None:
        if snapshot_pk not in self.validators:
            schema = blueprint.get("input_schema")
            self.validators[snapshot_pk] = Draft202012Validator(schema) if schema else None
        return self.validators[snapshot_pk]

    def write(self, edits: list[Edited]) -> None:
        """Store the edited orders with their log entries, in the caller's transaction."""
        if not edits:
            return
        now = timezone.now()
        update_orders(
            [
                {
                    "pk": edit.order.pk,
                    "payload": edit.payload,
                    "data": edit.data,
                    "resume_point": edit.resume_point,
                    "concurrency_key": edit.concurrency_key,
                    "updated_at": now,
                }
                for edit in edits
            ],
            fields=("payload", "data", "resume_point", "concurrency_key", "updated_at"),
        )
        secrets = [value for value in load_secrets().values() if value]
        StepLog.objects.bulk_create(
            log_entry(
                order_pk=edit.order.pk,
                run=edit.order.run,
                step=edit.order.current_step,
                kind=StepLog.Kind.EDIT,
                outcome=StepLog.Outcome.REQUESTED,
                started_at=now,
                actor=self.actor,
                saved=edit.saved,
                request=mask(
                    {"reason": self.reason, "changes": [c.as_json() for c in edit.changes]},
                    secrets,
                ),
            )
            for edit in edits
        )
        if any(edit.order.status == Order.Status.PENDING for edit in edits):
            doorbell.ring(doorbell.ORDERS)  # once committed: a due order runs at once


def order_edit(*, order: Order, **edit: Any) -> Order:
    """Apply one edit to `order` (EditPlan's arguments); raises EditInvalid (400) or
    EditRefused (409). The row is locked, so a worker's claim comes before or after."""
    plan = EditPlan(**edit)
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).select_related("snapshot")
        plan.write([plan.apply(locked.get(pk=order.pk))])
    return Order.objects.get(pk=order.pk)


def edit_chunk(pks: list[int], *, plan: EditPlan, then: Any = None) -> BulkResult:
    """Edit the orders of `pks` the plan applies to, in the caller's transaction (orders a
    worker holds this instant are skipped); `then` (a ReprocessPlan) reprocesses those
    edited."""
    rows = with_snapshots(list(lock_orders(Order.objects.filter(pk__in=pks))))
    edits = []
    for order in rows:
        try:
            edits.append(plan.apply(order))
        except (EditInvalid, EditRefused):
            continue
    plan.write(edits)
    if then is not None and edits:
        then.begin(then.rows(Order.objects.filter(pk__in=[e.order.pk for e in edits])))
    return BulkResult(count=len(edits), skipped=len(pks) - len(edits))


def edit_preview(orders: QuerySet, *, plan: EditPlan, diffs: int = 50, chunk: int = 1000) -> dict:
    """What the edit would do to a selection, writing nothing: how many orders change, how
    many would be refused by cause (with the first orders of each), and the first diffs."""
    changed, refused, shown = 0, {}, []
    snapshots: dict[int, WorkflowSnapshot] = {}
    secrets = [value for value in load_secrets().values() if value]
    pks = list(orders.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), chunk):
        chunk_orders = Order.objects.filter(pk__in=pks[start : start + chunk]).order_by("pk")
        for order in with_snapshots(list(chunk_orders), snapshots):
            try:
                edit = plan.apply(order)
            except (EditInvalid, EditRefused) as exc:
                cause = _cause(exc, order)
                entry = refused.setdefault(cause, {"cause": cause, "count": 0, "first": []})
                entry["count"] += 1
                if len(entry["first"]) < 5:
                    entry["first"].append(order.order_id)
                continue
            changed += 1
            if len(shown) < diffs:
                changes = [change.as_json() for change in edit.changes]
                shown.append({"order_id": order.order_id, "changes": mask(changes, secrets)})
    return {
        "total": len(pks),
        "change": changed,
        "refused": sum(entry["count"] for entry in refused.values()),
        "causes": sorted(refused.values(), key=lambda entry: -entry["count"]),
        "diffs": shown,
    }


def with_snapshots(
    orders: list[Order], known: dict[int, WorkflowSnapshot] | None = None
) -> list[Order]:
    """The orders with their snapshots, each read once (a chunk's orders share a few)."""
    known = {} if known is None else known
    missing = {order.snapshot_id for order in orders} - known.keys()
    known.update(WorkflowSnapshot.objects.in_bulk(missing))
    for order in orders:
        order.snapshot = known[order.snapshot_id]
    return orders


def _cause(exc: Exception, order: Order) -> str:
    if isinstance(exc, EditRefused):
        return f"{order.status}: only failed, cancelled, pending and waiting orders are edited"
    return "; ".join(exc.errors) if isinstance(exc, EditInvalid) else str(exc)


def _request_problems(reason, payload, data, set_paths, unset_paths) -> list[str]:
    problems = []
    if not reason:
        problems.append("reason: say why the order is edited")
    elif len(reason) > MAX_REASON:
        problems.append(f"reason: at most {MAX_REASON} characters")
    if set_paths is not None and not isinstance(set_paths, Mapping):
        problems.append('set: an object of dotted paths, e.g. {"payload.address.zip": "10115"}')
    if unset_paths is not None and (
        isinstance(unset_paths, str | Mapping) or not isinstance(unset_paths, Iterable)
    ):
        problems.append('unset: a list of dotted paths, e.g. ["data.quote"]')
    if problems:
        return problems
    if payload is _MISSING and data is _MISSING and not set_paths and not unset_paths:
        problems.append("give payload, data, set or unset: the edit changes nothing")
    for path in [*(set_paths or {}), *(unset_paths or ())]:
        root = str(path).split(".", 1)[0]
        if root not in ROOTS or "." not in str(path):
            problems.append(f"{path}: a path starts with payload. or data.")
        elif (root == "payload" and payload is not _MISSING) or (
            root == "data" and data is not _MISSING
        ):
            problems.append(f"{path}: {root} is replaced whole by this edit")
    return problems


def _apply_paths(edited: dict, set_paths: Mapping, unset_paths: Iterable[str]) -> list[str]:
    problems = []
    for path, value in set_paths.items():
        problem = set_path(edited, str(path).split("."), value)
        if problem:
            problems.append(f"{path}: {problem}")
    for path in unset_paths:
        problem = unset_path(edited, str(path).split("."))
        if problem:
            problems.append(f"{path}: {problem}")
    return problems


def _differences(path: str, before: Any, after: Any) -> list[Change]:
    """Every changed leaf path, objects walked key by key (lists and scalars whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in [*before, *(k for k in after if k not in before)]:
            changes += _differences(
                f"{path}.{key}", before.get(key, _MISSING), after.get(key, _MISSING)
            )
        return changes
    if before is _MISSING and after is _MISSING:
        return []
    if type(before) is type(after) and before == after:
        return []
    return [Change(path, before, after)]
