"""What creating an order of a workflow needs, made once per version of its definitions
and kept in process memory, so a webhook post costs one query to check it is current."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from jsonschema.validators import validator_for

from apicalls.models import ApiCall
from blueprints.models import Blueprint, WorkflowSnapshot
from blueprints.services import workflow_snapshot
from definitions.validation import api_call_slugs_used
from expressions.language import ExpressionError, render
from expressions.names import order_name

# As long as `Order.concurrency_key` may be.
MAX_CONCURRENCY_KEY = 500


@dataclass(frozen=True)
class Intake:
    """What creating an order of a workflow needs, made once per version of its
    definitions and kept in process memory: the snapshot (its canonical JSON and sha256
    are the costly part), the first step and the input schema's compiled validator."""

    stamp: frozenset
    api_call_slugs: tuple[str, ...]
    snapshot: WorkflowSnapshot
    first_step: str
    validator: Any  # a jsonschema validator, or None without input_schema
    concurrency_key: str  # the blueprint's expression, or "" without one


_intakes: dict[str, Intake] = {}


def forget_intake(workflow: str) -> None:
    _intakes.pop(workflow, None)


def intake_for(workflow: str) -> Intake | None:
    """The workflow's intake as of its definitions now, checked with one query; None when
    there is no such workflow.

    Every save of the blueprint or of an API call it uses changes that row's `updated_at`
    (and a saved definition its `version`), so the next order after an edit, in any
    process, builds the intake again.
    """
    cached = _intakes.get(workflow)
    stamp = _definitions_stamp(workflow, cached.api_call_slugs if cached else ())
    if cached is not None and cached.stamp == stamp:
        return cached
    blueprint = Blueprint.objects.filter(slug=workflow).first() if _blueprint_row(stamp) else None
    if blueprint is None:
        _intakes.pop(workflow, None)
        return None
    slugs = tuple(sorted(api_call_slugs_used(blueprint.steps)))
    # Stamped before the snapshot reads the API calls: an edit meanwhile makes the stamp
    # older than what was read, so the next order builds the intake again.
    fresh = _definitions_stamp(workflow, slugs)
    snapshot = workflow_snapshot(blueprint=blueprint)
    schema = blueprint.input_schema
    intake = Intake(
        stamp=fresh,
        api_call_slugs=slugs,
        snapshot=snapshot,
        first_step=snapshot.definition["blueprint"]["steps"][0]["id"],
        validator=None if schema is None else validator_for(schema)(schema),
        concurrency_key=snapshot.definition["blueprint"].get("concurrency_key", ""),
    )
    if _blueprint_row(fresh) == _blueprint_row(stamp):  # not edited while it was read
        _intakes[workflow] = intake
    return intake


def _definitions_stamp(workflow: str, api_call_slugs: tuple[str, ...]) -> frozenset:
    """(kind, slug, id, version, updated_at) of the blueprint and of those API calls."""
    quote = connection.ops.quote_name
    columns = "slug, id, version, updated_at"
    sql = f"SELECT 'blueprint', {columns} FROM {quote(Blueprint._meta.db_table)} WHERE slug = %s"
    if api_call_slugs:
        slugs = ", ".join(["%s"] * len(api_call_slugs))
        sql += (
            f" UNION ALL SELECT 'api_call', {columns} FROM {quote(ApiCall._meta.db_table)}"
            f" WHERE slug IN ({slugs})"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workflow, *api_call_slugs])
        return frozenset(cursor.fetchall())


def _blueprint_row(stamp: frozenset) -> tuple | None:
    return next((row for row in stamp if row[0] == "blueprint"), None)


def payload_errors(validator, payload: Any) -> list[str]:
    """Every way the payload breaks the blueprint's input schema, each with its JSON path."""
    if validator is None:
        return []
    errors = sorted(
        validator.iter_errors(payload),
        key=lambda error: [str(part) for part in error.absolute_path],
    )
    return [f"{_json_path('payload', error.absolute_path)}: {error.message}" for error in errors]


def _json_path(root: str, path) -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def concurrency_key_errors(
    template: str, *, payload: Any, order_id: str, workflow: str, created_at: datetime
) -> tuple[str, list[str]]:
    """The order's concurrency key, rendered once when it is created over its input and
    its fields (as `notify_url` is), and what is wrong with it: a key that cannot be
    rendered, or that is too long, is bad input, refused rather than run without a key.
    A key that renders to null or "" is no key."""
    if not template:
        return "", []
    context = {
        "input": payload,
        "order": order_name(
            order_id=order_id, workflow=workflow, created_at=created_at.isoformat(), run=1
        ),
    }
    try:
        value = render(template, context, "concurrency_key")
    except ExpressionError as exc:
        return "", [str(exc)]
    if value is None:
        return "", []
    key = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(key) > MAX_CONCURRENCY_KEY:
        return "", [f"concurrency_key: longer than {MAX_CONCURRENCY_KEY} characters"]
    return key, []
