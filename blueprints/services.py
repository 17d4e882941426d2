"""Writes to blueprints, the snapshots orders run on, and definitions import/export (the
connections the API calls name with them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apicalls.models import ApiCall
from apicalls.services import api_call_save, connection_errors
from blueprints.models import Blueprint, BlueprintVersion, WorkflowSnapshot
from connections.models import Connection
from connections.services import connection_save
from connections.validation import connection_errors as connection_definition_errors
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
    """Every connection, API call and blueprint as contract JSON, each ordered by its name.

    `connections` is left out when there is none, so a system without connections writes
    the document it always did, which older versions import too.
    """
    connections = [c.as_definition() for c in Connection.objects.order_by("name")]
    return {
        **({"connections": connections} if connections else {}),
        "api_calls": [contract_order(a.as_definition()) for a in ApiCall.objects.order_by("slug")],
        "blueprints": [
            contract_order(b.as_definition()) for b in Blueprint.objects.order_by("slug")
        ],
    }


@dataclass(frozen=True)
class ImportedDefinition:
    kind: str  # "connection", "api call" or "blueprint"
    slug: str  # a connection's name
    outcome: str  # "created", "updated", "unchanged" or "kept" (someone else's change)
    note: str = ""  # what was kept: "v3 by kim"


@dataclass
class ImportReport:
    definitions: list[ImportedDefinition] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.definitions if item.outcome == outcome)


def definitions_import(*, document: dict, user=None, keep_changes: bool = False) -> ImportReport:
    """Create or update every definition in `document`, or none if any is invalid.

    Connections come first, as API calls name them, and blueprints may call API calls
    defined in the same document. Errors are prefixed with the definition's place in the
    document: `blueprints[0].steps[3].next: no step "x"`. A document without connections
    (an older export) imports as it did.

    With `keep_changes` (the demo's setup, run at every start) a definition someone else
    changed is left as it is, reported "kept": an API call or blueprint whose latest
    version `user` did not save, a connection that differs from the document's.
    """
    connections, api_calls, blueprints = _document_parts(document)
    known_slugs = set(ApiCall.objects.values_list("slug", flat=True)) | _keys(api_calls, "slug")
    known_names = set(Connection.objects.values_list("name", flat=True)) | _keys(
        connections, "name"
    )
    errors = []
    for index, definition in enumerate(connections):
        errors += connection_definition_errors(definition, prefix=f"connections[{index}]")
    for index, definition in enumerate(api_calls):
        place = f"api_calls[{index}]"
        errors += api_call_errors(definition, prefix=place) or connection_errors(
            definition, connection_names=known_names, prefix=place
        )
    for index, definition in enumerate(blueprints):
        errors += blueprint_errors(
            definition, api_call_slugs=known_slugs, prefix=f"blueprints[{index}]"
        )
    errors += _duplicate_key_errors("connections", connections, "name")
    errors += _duplicate_key_errors("api_calls", api_calls, "slug")
    errors += _duplicate_key_errors("blueprints", blueprints, "slug")
    if errors:
        raise DefinitionError(errors)

    report = ImportReport()
    with transaction.atomic():
        before = {c.name: canonical_json(c.as_definition()) for c in Connection.objects.all()}
        for definition in connections:
            if keep_changes and before.get(definition["name"], "") not in (
                "",
                canonical_json(definition),
            ):
                report.definitions.append(
                    ImportedDefinition("connection", definition["name"], "kept", "changed here")
                )
                continue
            saved = connection_save(definition=definition, user=user)
            report.definitions.append(_imported_connection(saved, before))
        versions = dict(ApiCall.objects.values_list("slug", "version"))
        for definition in api_calls:
            kept = keep_changes and _changed_by_others(ApiCall, definition, user)
            if kept:
                report.definitions.append(ImportedDefinition("api call", *kept))
                continue
            saved = api_call_save(definition=definition, user=user)
            report.definitions.append(_imported("api call", saved, versions))
        versions = dict(Blueprint.objects.values_list("slug", "version"))
        for definition in blueprints:
            kept = keep_changes and _changed_by_others(Blueprint, definition, user)
            if kept:
                report.definitions.append(ImportedDefinition("blueprint", *kept))
                continue
            saved = blueprint_save(definition=definition, user=user)
            report.definitions.append(_imported("blueprint", saved, versions))
    return report


def _changed_by_others(model, definition: dict, user) -> tuple[str, str, str] | None:
    """(slug, "kept", who changed it) when the definition exists, differs from the
    document's and its latest version was not saved by `user`; else None."""
    instance = model.objects.filter(slug=definition["slug"]).first()
    if instance is None:
        return None
    if _meaningful(instance.as_definition()) == _meaningful(definition):
        return None
    latest = instance.versions.order_by("-version").select_related("created_by").first()
    author = latest.created_by if latest is not None else None
    if author is not None and user is not None and author.pk == user.pk:
        return None
    by = author.get_username() if author is not None else "someone"
    return instance.slug, "kept", f"v{instance.version} by {by}"


DOCUMENT_KEYS = ("connections", "api_calls", "blueprints")


def _document_parts(document) -> tuple[list, list, list]:
    if not isinstance(document, dict):
        raise DefinitionError(
            ['must be an object with "connections", "api_calls" and "blueprints"']
        )
    errors = [f"{key}: unknown key" for key in document if key not in DOCUMENT_KEYS]
    parts = []
    for key in DOCUMENT_KEYS:
        part = document.get(key, [])
        if not isinstance(part, list):
            errors.append(f"{key}: must be a list")
        parts.append(part if isinstance(part, list) else [])
    if errors:
        raise DefinitionError(errors)
    return parts[0], parts[1], parts[2]


def _keys(definitions: list, key: str) -> set[str]:
    """The slugs (or names) the definitions of a document give, where they give one."""
    return {d[key] for d in definitions if isinstance(d, dict) and isinstance(d.get(key), str)}


def _duplicate_key_errors(part: str, definitions: list, key: str) -> list[str]:
    errors, seen = [], set()
    for index, definition in enumerate(definitions):
        value = definition.get(key) if isinstance(definition, dict) else None
        if isinstance(value, str) and value in seen:
            errors.append(f'{part}[{index}].{key}: duplicate {key} "{value}"')
        seen.add(value)
    return errors


def _imported_connection(saved: Connection, before: dict[str, str]) -> ImportedDefinition:
    if saved.name not in before:
        outcome = "created"
    elif canonical_json(saved.as_definition()) != before[saved.name]:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return ImportedDefinition(kind="connection", slug=saved.name, outcome=outcome)


def _imported(kind: str, saved, versions_before: dict) -> ImportedDefinition:
    if saved.slug not in versions_before:
        outcome = "created"
    elif saved.version != versions_before[saved.slug]:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return ImportedDefinition(kind=kind, slug=saved.slug, outcome=outcome)


def _meaningful(definition: dict) -> str:
    """The definition's canonical JSON without the keys left empty, which mean their
    default whether stored or left out."""
    return canonical_json({k: v for k, v in definition.items() if v not in ("", None)})
