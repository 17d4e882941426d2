"""Writes to API calls, shared by the admin, the API and the import command."""

from __future__ import annotations

from django.db import models, transaction

from apicalls.models import ApiCall, ApiCallVersion
from connections.models import Connection
from core.errors import join_place
from core.usage import UsageFinders
from definitions.services import save_definition
from definitions.validation import DefinitionError, api_call_errors

# Who uses an API call is known to the apps above: blueprints register their finder.
_usage = UsageFinders()
register_usage_finder = _usage.register


def api_call_users(slug: str) -> list[models.Model]:
    """The definitions (blueprints) that call the API call `slug`."""
    return _usage.users(slug)


def api_call_save(*, definition: dict, user=None) -> ApiCall:
    """Validate an API call's contract JSON and create or update it by slug.

    The connection it names is locked until the call is saved, so it cannot be deleted
    meanwhile (`connection_delete` locks it too).
    """
    with transaction.atomic():
        errors = api_call_errors(definition)
        if not errors and "connection" in definition:
            locked = Connection.objects.select_for_update().filter(name=definition["connection"])
            errors = connection_errors(
                definition, connection_names=locked.values_list("name", flat=True)
            )
        if errors:
            raise DefinitionError(errors)
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


def connection_errors(definition, *, connection_names, prefix: str = "") -> list[str]:
    """The API call's `connection`, when it names none of `connection_names`."""
    name = definition.get("connection") if isinstance(definition, dict) else None
    if isinstance(name, str) and name not in set(connection_names):
        return [f'{join_place(prefix, ["connection"])}: no connection named "{name}"']
    return []


def api_calls_using(connection: str) -> list[ApiCall]:
    """The API calls that name the connection `connection`, by slug."""
    return list(ApiCall.objects.filter(definition__connection=connection).order_by("slug"))


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
