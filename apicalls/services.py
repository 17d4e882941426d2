"""Writes to API calls, shared by the admin, the API and the import command.

`save_definition` also serves blueprints: both kinds keep one version row per change.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models, transaction

from apicalls.models import ApiCall, ApiCallVersion
from blueprints.models import Blueprint
from blueprints.validation import DefinitionError, api_call_slugs_used, validate_api_call


def canonical_json(value: Any) -> str:
    """One text per JSON value whatever its key order, for comparing and hashing definitions."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def save_definition(
    model: type[models.Model],
    *,
    slug: str,
    fields: dict,
    version_model: type[models.Model],
    owner_field: str,
    user=None,
):
    """Create or update `model` by slug; a changed definition bumps `version` and is recorded.

    Saving the same content again writes nothing, so re-imports and no-op admin saves
    leave the version history alone.
    """
    with transaction.atomic():
        instance = model.objects.select_for_update().filter(slug=slug).first()
        candidate = model(slug=slug, **fields)
        if instance is None:
            instance = candidate
            instance.version = 1
        elif canonical_json(instance.as_definition()) == canonical_json(candidate.as_definition()):
            return instance
        else:
            for name, value in fields.items():
                setattr(instance, name, value)
            instance.version += 1
        instance.save()
        version_model.objects.create(
            **{owner_field: instance},
            version=instance.version,
            definition=instance.as_definition(),
            created_by=user if user is not None and user.is_authenticated else None,
        )
    return instance


def api_call_save(*, definition: dict, user=None) -> ApiCall:
    """Validate an API call's contract JSON and create or update it by slug."""
    validate_api_call(definition)
    return save_definition(
        ApiCall,
        slug=definition["slug"],
        fields={
            "name": definition["name"],
            "definition": {k: v for k, v in definition.items() if k not in ("slug", "name")},
        },
        version_model=ApiCallVersion,
        owner_field="api_call",
        user=user,
    )


def api_call_delete(*, api_call: ApiCall) -> None:
    """Delete an API call no blueprint uses; orders already created keep their snapshot."""
    with transaction.atomic():
        ApiCall.objects.select_for_update().filter(pk=api_call.pk).first()
        users = [
            blueprint.slug
            for blueprint in Blueprint.objects.only("slug", "steps")
            if api_call.slug in api_call_slugs_used(blueprint.steps)
        ]
        if users:
            raise DefinitionError(f'slug: used by blueprint "{slug}"' for slug in users)
        api_call.delete()
