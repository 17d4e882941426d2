"""Writes to blueprints, the snapshots orders run on, and definitions import/export."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apicalls.models import ApiCall
from apicalls.services import api_call_save
from blueprints.models import Blueprint, BlueprintVersion, WorkflowSnapshot
from core import doorbell
from definitions.services import canonical_json, save_definition
from definitions.validation import (
    DefinitionError,
    api_call_errors,
    api_call_slugs_used,
    blueprint_errors,
    validate_blueprint,
)
from definitions.versions import contract_order


def blueprint_save(*, definition: dict, user=None) -> Blueprint:
    """Validate a blueprint's contract JSON against the API calls in the DB; create or update."""
    validate_blueprint(definition, api_call_slugs=api_call_slugs())
    return save_definition(
        Blueprint,
        slug=definition["slug"],
        fields={
            "name": definition["name"],
            "description": definition.get("description", ""),
            "input_schema": definition.get("input_schema"),
            "steps": definition["steps"],
            "notify_url": definition.get("notify_url", ""),
            "concurrency_key": definition.get("concurrency_key", ""),
        },
        version_model=BlueprintVersion,
        user=user,
    )


def blueprint_pause(*, blueprint: Blueprint, actor: str) -> Blueprint:
    """Hold the blueprint's orders: batches leave them due until it is resumed, while the
    webhook still accepts new ones. Operations, not a definition change: no new version.
    Pausing a paused blueprint keeps when and by whom it was first paused."""
    Blueprint.objects.filter(pk=blueprint.pk, paused_at__isnull=True).update(
        paused_at=timezone.now(), paused_by=actor
    )
    blueprint.refresh_from_db(fields=["paused_at", "paused_by"])
    return blueprint


def blueprint_resume(*, blueprint: Blueprint, actor: str) -> Blueprint:
    """Let batches claim the blueprint's orders again; resuming a running one does nothing."""
    Blueprint.objects.filter(pk=blueprint.pk).update(paused_at=None, paused_by="")
    doorbell.ring(doorbell.ORDERS)
    blueprint.refresh_from_db(fields=["paused_at", "paused_by"])
    return blueprint


def api_call_slugs() -> set[str]:
    """The slugs of the API calls that exist, which blueprint steps may call."""
    return set(ApiCall.objects.values_list("slug", flat=True))


def blueprints_using(slug: str) -> list[Blueprint]:
    """The blueprints whose steps call the API call `slug`, parallel branches included."""
    return [
        blueprint
        for blueprint in Blueprint.objects.only("pk", "slug", "steps")
        if slug in api_call_slugs_used(blueprint.steps)
    ]


def workflow_snapshot(*, blueprint: Blueprint) -> WorkflowSnapshot:
    """The blueprint and the API calls it uses, frozen as they are now.

    Content-addressed, so every order created between two edits shares one row.
    """
    definition = workflow_definition(blueprint=blueprint)
    digest = hashlib.sha256(canonical_json(definition).encode()).hexdigest()
    snapshot, _ = WorkflowSnapshot.objects.get_or_create(
        digest=digest,
        defaults={
            "workflow": blueprint.slug,
            "blueprint_version": blueprint.version,
            "definition": definition,
        },
    )
    return snapshot


def workflow_definition(*, blueprint: Blueprint) -> dict:
    """A snapshot's `definition` for the blueprint as it is now, without saving a snapshot
    (a dry run walks it)."""
    api_calls = ApiCall.objects.filter(slug__in=api_call_slugs_used(blueprint.steps))
    return {
        "blueprint": blueprint.as_definition(),
        "api_calls": {api_call.slug: api_call.as_definition() for api_call in api_calls},
    }


def definitions_export() -> dict:
    """Every API call and blueprint as contract JSON, ordered by slug."""
    return {
        "api_calls": [contract_order(a.as_definition()) for a in ApiCall.objects.order_by("slug")],
        "blueprints": [
            contract_order(b.as_definition()) for b in Blueprint.objects.order_by("slug")
        ],
    }


@dataclass(frozen=True)
class ImportedDefinition:
    kind: str  # "api call" or "blueprint"
    slug: str
    outcome: str  # "created", "updated" or "unchanged"


@dataclass
class ImportReport:
    definitions: list[ImportedDefinition] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.definitions if item.outcome == outcome)


def definitions_import(*, document: dict, user=None) -> ImportReport:
    """Create or update every definition in `document`, or none if any is invalid.

    Blueprints may call API calls defined in the same document. Errors are prefixed with
    the definition's place in the document: `blueprints[0].steps[3].next: no step "x"`.
    """
    api_calls, blueprints = _document_parts(document)
    document_slugs = {d["slug"] for d in api_calls if isinstance(d, dict) and "slug" in d}
    known_slugs = set(ApiCall.objects.values_list("slug", flat=True)) | document_slugs
    errors = []
    for index, definition in enumerate(api_calls):
        errors += api_call_errors(definition, prefix=f"api_calls[{index}]")
    for index, definition in enumerate(blueprints):
        errors += blueprint_errors(
            definition, api_call_slugs=known_slugs, prefix=f"blueprints[{index}]"
        )
    errors += _duplicate_slug_errors("api_calls", api_calls)
    errors += _duplicate_slug_errors("blueprints", blueprints)
    if errors:
        raise DefinitionError(errors)

    report = ImportReport()
    with transaction.atomic():
        versions = dict(ApiCall.objects.values_list("slug", "version"))
        for definition in api_calls:
            saved = api_call_save(definition=definition, user=user)
            report.definitions.append(_imported("api call", saved, versions))
        versions = dict(Blueprint.objects.values_list("slug", "version"))
        for definition in blueprints:
            saved = blueprint_save(definition=definition, user=user)
            report.definitions.append(_imported("blueprint", saved, versions))
    return report


def _document_parts(document) -> tuple[list, list]:
    if not isinstance(document, dict):
        raise DefinitionError(['must be an object with "api_calls" and "blueprints"'])
    errors = [f"{key}: unknown key" for key in document if key not in ("api_calls", "blueprints")]
    parts = []
    for key in ("api_calls", "blueprints"):
        part = document.get(key, [])
        if not isinstance(part, list):
            errors.append(f"{key}: must be a list")
        parts.append(part if isinstance(part, list) else [])
    if errors:
        raise DefinitionError(errors)
    return parts[0], parts[1]


def _duplicate_slug_errors(key: str, definitions: list) -> list[str]:
    errors, seen = [], set()
    for index, definition in enumerate(definitions):
        slug = definition.get("slug") if isinstance(definition, dict) else None
        if isinstance(slug, str) and slug in seen:
            errors.append(f'{key}[{index}].slug: duplicate slug "{slug}"')
        seen.add(slug)
    return errors


def _imported(kind: str, saved, versions_before: dict) -> ImportedDefinition:
    if saved.slug not in versions_before:
        outcome = "created"
    elif saved.version != versions_before[saved.slug]:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return ImportedDefinition(kind=kind, slug=saved.slug, outcome=outcome)
