"""The API's parsers: DRF's, each refusing a body no door may store (a 400 naming each
place), and JSON nested too deeply for Python a 400, not a 500.

Every view gets its body checked before a serializer sees it (a serializer would store
text PostgreSQL cannot hold, or recurse through such nesting), unless it sets
`check_storable_body = False` because its own validation names the places better.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.errors import ServiceErrors, join_place
from core.storable import unstorable, unstorable_fields


class BodyUnstorable(ServiceErrors):
    """A body with text PostgreSQL cannot store, or nested too deeply: a 400 naming each
    place. (A ServiceError, not core.api's BadRequest: DRF's views, which core.api needs,
    import these parsers.)"""


def storable_body(data: Any) -> Any:
    """The request body, once no string or key in it is text PostgreSQL cannot store and
    no field nests deeper than STATE_MANAGER_MAX_JSON_DEPTH; else a 400 naming each place.
    A form's field given more than once is checked at each of its values."""
    if isinstance(data, QueryDict):
        fields = {key: values[0] if len(values) == 1 else values for key, values in data.lists()}
        problems = unstorable_fields(fields)
    else:
        problems = unstorable_fields(data) if isinstance(data, dict) else unstorable(data)
    if problems:
        raise BodyUnstorable([f"{join_place('', path) or 'body'}: {why}" for path, why in problems])
    return data


class StorableBody:
    """A parser whose body is checked by storable_body, unless the view opts out."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        view = (parser_context or {}).get("view")
        if getattr(view, "check_storable_body", True):
            storable_body(getattr(parsed, "data", parsed))  # a multipart body: its fields
        return parsed


class JSONParser(StorableBody, parsers.JSONParser):
    """Python's json module recurses once per level and gives up near 1000 levels, long
    before the 1 MiB body limit; every door refuses far shallower JSON anyway
    (STATE_MANAGER_MAX_JSON_DEPTH), so such a body is malformed for us."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc


class FormParser(StorableBody, parsers.FormParser):
    pass


class MultiPartParser(StorableBody, parsers.MultiPartParser):
    pass
