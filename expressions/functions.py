"""The built-in functions of expressions, registered with `@function` like a project's own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json as jsonlib
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from expressions.forms import read_form
from expressions.registry import function
from expressions.xmldocs import read_xml

UUID_NAMESPACE = uuidlib.UUID("3d1f1b5e-6c8f-4b0a-9a0e-5b7f2f0c9e21")


# Date and time. Values are ISO 8601 strings, as they travel in JSON.


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@function("now")
def now(format: str | None = None) -> str:
    """The current UTC time, as ISO 8601, or formatted with strftime codes when given.

    `{{ now() }}` → `2026-11-24T17:30:00+00:00`; `{{ "%Y-%m-%d" | now }}` → `2026-11-24`.
    """
    current = datetime.now(UTC).replace(microsecond=0)
    return current.strftime(format) if format else current.isoformat()


@function("format_datetime")
def format_datetime(value: Any, format: str = "%Y-%m-%dT%H:%M:%S%z") -> str:
    """An ISO 8601 date or time formatted with strftime codes:
    `{{ order.created_at | format_datetime("%d.%m.%Y") }}`."""
    return _parse_datetime(value).strftime(format)


@function("add_days")
def add_days(value: Any, days: float) -> str:
    """An ISO 8601 date or time moved by `days` (negative goes back):
    `{{ now() | add_days(14) }}`."""
    moved = _parse_datetime(value) + timedelta(days=days)
    if isinstance(value, str) and len(value) == 10:
        return moved.date().isoformat()
    return moved.isoformat()


@function("add_hours")
def add_hours(value: Any, hours: float) -> str:
    """An ISO 8601 time moved by `hours`: `{{ now() | add_hours(2) }}`."""
    return (_parse_datetime(value) + timedelta(hours=hours)).isoformat()


# Ids.


@function("uuid")
def uuid(value: Any = None) -> str:
    """A random UUID: `{{ uuid() }}`; or one derived from a value, the same every time:
    `{{ order.order_id | uuid }}` (safe to use in requests that may be retried)."""
    if value is None:
        return str(uuidlib.uuid4())
    return str(uuidlib.uuid5(UUID_NAMESPACE, str(value)))


# Encoding.


@function("json")
def json(value: Any) -> str:
    """The value as compact JSON text: `{{ data.lines | json }}`."""
    return jsonlib.dumps(value, separators=(",", ":"), ensure_ascii=False)


@function("from_json")
def from_json(value: str) -> Any:
    """JSON text parsed into a value: `{{ (response.body | from_json).id }}`."""
    return jsonlib.loads(value)


@function("b64encode")
def b64encode(value: Any) -> str:
    """Base64 of the value's UTF-8 text:
    `{{ (secrets.USER ~ ":" ~ secrets.PASSWORD) | b64encode }}`."""
    return base64.b64encode(_bytes(value)).decode("ascii")


@function("b64decode")
def b64decode(value: str) -> str:
    """The UTF-8 text of a Base64 value."""
    return base64.b64decode(_bytes(value)).decode("utf-8")


# Reading response bodies that are not JSON (they stay text in `response.body`).


@function("xml")
def xml(value: str, prefixes: bool = True) -> dict:
    """An XML text as an object: `{{ (response.body | xml)["soap:Envelope"] }}`. Elements
    are keys, repeated ones lists, attributes `@name`, text `#text` beside attributes or
    children; `xml(prefixes=false)` drops namespace prefixes. DTDs and entities are refused."""
    return read_xml(value, prefixes)


@function("form")
def form(value: str) -> dict:
    """An urlencoded text as an object: `{{ (response.body | form).access_token }}`.
    Bracket notation nests: `a[b]=1&c[]=2` → `{"a": {"b": "1"}, "c": ["2"]}`."""
    return read_form(value)


# Hashing and signing.


@function("sha256")
def sha256(value: Any) -> str:
    """The SHA-256 hex digest of the value's text (JSON text for lists and objects)."""
    return hashlib.sha256(_bytes(value)).hexdigest()


@function("hmac_sha256")
def hmac_sha256(value: Any, key: str, encoding: str = "hex") -> str:
    """An HMAC-SHA256 signature of the value with `key`, as `hex` or `base64`:
    `{{ data.payload | json | hmac_sha256(secrets.SIGNING_KEY) }}`."""
    digest = hmac.new(_bytes(key), _bytes(value), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii") if encoding == "base64" else digest.hex()


# Lists of objects.


@function("pluck")
def pluck(items: Iterable[Mapping], field: str) -> list:
    """The `field` of every object in a list: `{{ input.lines | pluck("sku") }}` → `["A", "B"]`."""
    return [item.get(field) for item in items]


@function("find")
def find(items: Iterable[Mapping], field: str, value: Any) -> Any:
    """The first object in a list whose `field` equals `value`, or none:
    `{{ (response.body.rates | find("currency", "EUR")).rate }}`."""
    return next((item for item in items if item.get(field) == value), None)


@function("keys")
def keys(value: Mapping) -> list:
    """The keys of an object, as a list."""
    return list(value.keys())


@function("values")
def values(value: Mapping) -> list:
    """The values of an object, as a list."""
    return list(value.values())


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json(value).encode("utf-8")
