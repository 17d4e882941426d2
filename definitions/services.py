"""Saving a definition (an API call or a blueprint) with its version history."""

from __future__ import annotations

import json
from typing import Any

from django.db import models, transaction

from definitions.models import DefinitionVersion


def canonical_json(value: Any) -> str:
    """One text per JSON value whatever its key order, for comparing and hashing definitions.

    >>> canonical_json({"b": [1, 2], "a": "é"})
    '{"a":"é","b":[1,2]}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def save_definition(
    model: type[models.Model],
    *,
    slug: str,
    fields: dict,
    version_model: type[DefinitionVersion],
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
            **{version_model.owner_field: instance},
            version=instance.version,
            definition=instance.as_definition(),
            created_by=user if user is not None and user.is_authenticated else None,
        )
    return instance
