"""Writes to API calls, shared by the admin, the API and the import command."""

from __future__ import annotations

from collections.abc import Callable

from django.db import models, transaction

from apicalls.models import ApiCall, ApiCallVersion
from definitions.services import save_definition
from definitions.validation import DefinitionError, validate_api_call

# Who uses an API call is known to the apps above (blueprints register theirs when they
# start): each finder maps an API call's slug to the definitions that call it.
UsageFinder = Callable[[str], list[models.Model]]
_usage_finders: list[UsageFinder] = []


def register_usage_finder(finder: UsageFinder) -> None:
    if finder not in _usage_finders:
        _usage_finders.append(finder)


def api_call_users(slug: str) -> list[models.Model]:
    """The definitions (blueprints) that call the API call `slug`."""
    return [user for finder in _usage_finders for user in finder(slug)]


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
        user=user,
    )


def api_call_delete(*, api_call: ApiCall) -> None:
    """Delete an API call no blueprint uses; orders already created keep their snapshot."""
    with transaction.atomic():
        ApiCall.objects.select_for_update().filter(pk=api_call.pk).first()
        users = api_call_users(api_call.slug)
        if users:
            raise DefinitionError(
                f'slug: used by {user._meta.verbose_name} "{user.slug}"' for user in users
            )
        api_call.delete()
