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
from django.utils import timezone
from jsonschema import Draft202012Validator

from core import doorbell
from core.errors import ServiceError, ServiceErrors
from expressions.secrets import load_secrets, mask
from orders.dotted_paths import MISSING as _MISSING
from orders.dotted_paths import data_edit, replay_data_edit, set_path, unset_path
from orders.intake import concurrency_key_errors, payload_errors
from orders.models import Order, StepLog
from orders.transitions import log_entry

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


def order_edit(
    *,
    order: Order,
    reason: str,
    actor: str,
    payload: Any = _MISSING,
    data: Any = _MISSING,
    set_paths: Mapping[str, Any] | None = None,
    unset_paths: Iterable[str] | None = None,
) -> Order:
    """Apply one edit to `order`; raises EditInvalid (400) or EditRefused (409)."""
    reason = (reason or "").strip()
    problems = _request_problems(reason, payload, data, set_paths, unset_paths)
    if problems:
        raise EditInvalid(problems)
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("snapshot")
            .get(pk=order.pk)
        )
        if order.status not in EDITABLE:
            raise EditRefused(
                f'order "{order.order_id}" is {order.status}: only failed, cancelled, '
                "pending and waiting orders can be edited"
            )
        values = {"payload": order.payload, "data": order.data}
        edited = {
            "payload": copy.deepcopy(order.payload if payload is _MISSING else payload),
            "data": copy.deepcopy(order.data if data is _MISSING else data),
        }
        problems = _apply_paths(edited, set_paths or {}, unset_paths or ())
        if not isinstance(edited["data"], dict):
            problems.append("data: must be an object")
        blueprint = order.snapshot.definition["blueprint"]
        problems += _schema_problems(blueprint, edited["payload"])
        if problems:
            raise EditInvalid(problems)
        changes = [
            change for root in ROOTS for change in _differences(root, values[root], edited[root])
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
        now = timezone.now()
        changed_data = data_edit(
            edited["data"], set_paths, list(unset_paths or ()), replaced=data is not _MISSING
        )
        resume_point = order.resume_point
        if changed_data and isinstance(resume_point.get("data"), dict):
            # A reprocess from the failed step resumes with this data: it gets the edit too.
            resume_point = {
                **resume_point,
                "data": replay_data_edit(resume_point["data"], changed_data),
            }
        Order.objects.filter(pk=order.pk).update(
            payload=edited["payload"],
            data=edited["data"],
            resume_point=resume_point,
            concurrency_key=key,
            updated_at=now,
        )
        secrets = [value for value in load_secrets().values() if value]
        log_entry(
            order_pk=order.pk,
            run=order.run,
            step=order.current_step,
            kind=StepLog.Kind.EDIT,
            outcome=StepLog.Outcome.REQUESTED,
            started_at=now,
            actor=actor,
            saved=changed_data,
            request=mask(
                {"reason": reason, "changes": [change.as_json() for change in changes]}, secrets
            ),
        ).save()
        if order.status == Order.Status.PENDING:
            doorbell.ring(doorbell.ORDERS)  # once committed: a due order runs at once
    return Order.objects.get(pk=order.pk)


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


def _schema_problems(blueprint: Mapping, payload: Any) -> list[str]:
    schema = blueprint.get("input_schema")
    return payload_errors(Draft202012Validator(schema) if schema else None, payload)


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
