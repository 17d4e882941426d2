"""The impact of a blueprint change (contract section 5, "Impact preview"): a definition
replayed over recorded orders by the dry run's engine path, each call answered with the
response that order's latest run recorded for the same step. Nothing is sent or saved.

The recorded answers are the step log's: masked and cut to the log's body limit, so a
step that reads a cut part of a body may come out differently than it would for real.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from apicalls.models import ApiCall
from blueprints.models import Blueprint, BlueprintVersion
from core.errors import ServiceError, ServiceErrors
from definitions.validation import DefinitionError, api_call_slugs_used, validate_blueprint
from orders.engine.config import EngineConfig
from orders.engine.dry_run import DryRunInvalid, call_step_paths, dry_run, item_of
from orders.models import Order, StepLog

MAX_ORDERS = 1000
FINISHED = (Order.Status.COMPLETED, Order.Status.FAILED)


class ImpactInvalid(ServiceErrors):
    """The version or definition to replay cannot be used."""


class NoSuchVersion(ServiceError):
    status_code = 404


def chosen_definition(blueprint: Blueprint, version: Any) -> dict:
    """`{"blueprint", "api_calls"}` for `version`: "latest", a saved version's number, or a
    definition not saved yet (checked as a save would check it); API calls as they are."""
    if version == "latest" or version is None:
        definition = blueprint.as_definition()
    elif isinstance(version, int) and not isinstance(version, bool):
        saved = BlueprintVersion.objects.filter(blueprint=blueprint, version=version).first()
        if saved is None:
            raise NoSuchVersion(f'blueprint "{blueprint.slug}" has no version {version}')
        definition = saved.definition
    elif isinstance(version, Mapping):
        definition = {**version, "slug": blueprint.slug}
        try:
            validate_blueprint(
                definition, api_call_slugs=set(ApiCall.objects.values_list("slug", flat=True))
            )
        except DefinitionError as exc:
            raise ImpactInvalid([f"version.{error}" for error in exc.errors]) from None
    else:
        raise ImpactInvalid(['version: "latest", a version number or a blueprint definition'])
    slugs = api_call_slugs_used(definition.get("steps", []))
    api_calls = {call.slug: call.as_definition() for call in ApiCall.objects.filter(slug__in=slugs)}
    return {"blueprint": definition, "api_calls": api_calls}


def blueprint_impact(*, blueprint: Blueprint, version: Any, orders: QuerySet, limit: int) -> dict:
    """Per order of `orders` (its finished ones, newest first, at most `limit`): would it end
    the same way (status, end step, saved data) under the chosen definition?"""
    definition = chosen_definition(blueprint, version)
    config = EngineConfig.from_settings()
    paths = [path for path, _ in call_step_paths(definition["blueprint"]["steps"])]
    selected = list(
        orders.filter(workflow=blueprint.slug, status__in=FINISHED)
        .order_by("-created_at", "-pk")
        .only("pk", "order_id", "payload", "data", "status", "current_step", "run", "created_at")[
            : min(limit, MAX_ORDERS)
        ]
    )
    recorded = _recorded_answers(selected)
    rows, totals = [], {"same": 0, "different": 0, "unanswered": 0}
    for order in selected:
        row = _replay(order, definition, recorded.get(order.pk, {}), paths, config)
        totals[row["outcome"]] += 1
        rows.append(row)
    return {"total": len(rows), **totals, "orders": rows}


def _recorded_answers(orders: list[Order]) -> dict[int, dict[str, list[dict]]]:
    """Each order's latest run's answers by step path, in attempt order: one query."""
    runs = {order.pk: order.run for order in orders}
    answers: dict[int, dict[str, list[dict]]] = {}
    entries = (
        StepLog.objects.filter(order_id__in=runs, kind=StepLog.Kind.ATTEMPT, response__isnull=False)
        .order_by("order_id", "id")
        .values_list("order_id", "run", "step", "response")
    )
    for pk, run, step, response in entries.iterator(chunk_size=2000):
        if run != runs[pk] or not isinstance(response, dict) or response.get("status") is None:
            continue
        sample = {"status": response["status"], "body": response.get("body")}
        headers = response.get("headers")
        if isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values()):
            sample["headers"] = headers
        answers.setdefault(pk, {}).setdefault(step, []).append(sample)
    return answers


def _replay(order: Order, definition: dict, answers: dict, paths: list, config) -> dict:
    now = {
        "status": order.status,
        "end_step": order.current_step,
        "data": order.data,
    }
    responses = {  # a map's items answered item by item, as recorded
        path: samples
        for path, samples in answers.items()
        if path in paths or item_of(path) in paths
    }
    try:
        walked = dry_run(
            definition,
            payload=order.payload,
            responses=responses,
            config=config,
            created_at=order.created_at.isoformat(),
        )
    except DryRunInvalid as exc:
        would = {"status": "refused", "end_step": "", "data": {}, "errors": exc.errors}
        return {"order_id": order.order_id, "outcome": "different", "now": now, "would": would}
    called = [attempt.step for visit in walked.steps for attempt in visit.attempts]
    missing = sorted({step for step in called if step not in responses})
    would = {"status": walked.end.status, "end_step": walked.end.step, "data": walked.end.data}
    row = {"order_id": order.order_id, "now": now, "would": would}
    if missing:
        calls = {path: slug for path, slug in call_step_paths(definition["blueprint"]["steps"])}
        row["outcome"] = "unanswered"
        row["unanswered"] = [
            f"{step} would call {calls.get(step) or calls.get(item_of(step) or '', '?')}, "
            "which has no recorded answer"
            for step in missing
        ]
    elif (now["status"], now["end_step"], now["data"]) == (
        would["status"],
        would["end_step"],
        would["data"],
    ):
        row["outcome"] = "same"
    else:
        row["outcome"] = "different"
        row["difference"] = _difference(now, would)
    return row


def _difference(now: dict, would: dict) -> list[str]:
    found = [
        f"{key}: {now[key]!r} now, {would[key]!r} with the change"
        for key in ("status", "end_step")
        if now[key] != would[key]
    ]
    for key in sorted({*now["data"], *would["data"]}):
        before, after = now["data"].get(key), would["data"].get(key)
        if before != after:
            found.append(f"data.{key}: {before!r} now, {after!r} with the change")
    return found
