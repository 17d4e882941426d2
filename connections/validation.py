"""Validation of a connection's contract JSON (contract section 10).

Each kind has its own fields (`KIND_FIELDS`); any kind may add `client_certificate` and
`ca_bundle`. Every problem is one `"<place>: <reason>"`, all raised together:

>>> connection_errors({"name": "shop", "kind": "bearer", "token": "s3cr3t"})
['token: must be a {{ secrets.NAME }} expression, not a literal credential']

Credentials are only ever `{{ secrets.NAME }}` expressions, since connections are stored,
shown and exported; and an error never repeats what was written in a credential field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core.errors import join_place
from definitions.validation import DefinitionError, unset_secret_warnings, unstorable_errors
from expressions import compile_errors
from expressions.names import name_errors
from expressions.secrets import load_secrets

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
NAME_MAX_LENGTH = 100  # the model's
SECRET_EXPRESSION = re.compile(r"^\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
HEADER_NAME_REASON = "must be a header name: letters, digits and '-', without spaces"

API_KEY_LOCATIONS = ("header", "query")
CLIENT_AUTH_METHODS = ("basic", "body")
HMAC_ALGORITHMS = ("sha256", "sha512")
HMAC_ENCODINGS = ("hex", "base64")

# The names a connection's templates see: its credentials come from the environment, and
# the hmac `message` is rendered over the request being signed.
TEMPLATE_NAMES = ("secrets",)
MESSAGE_NAMES = ("request", "secrets")


class ConnectionInvalid(DefinitionError):
    """A connection was refused; `errors` lists every problem as `"<place>: <reason>"`."""


@dataclass(frozen=True)
class Field:
    """One key of a connection: whether it must be given, and what its value must be."""

    shape: str  # "template", "credential", "header", "text", "choice" or "certificate"
    required: bool = True
    choices: tuple[str, ...] = ()
    names: tuple[str, ...] = TEMPLATE_NAMES


def _optional(shape: str) -> Field:
    return Field(shape, required=False)


KIND_FIELDS: dict[str, dict[str, Field]] = {
    "api_key": {
        "in": Field("choice", choices=API_KEY_LOCATIONS),
        "param": Field("text"),
        "value": Field("credential"),
    },
    "basic": {"username": Field("template"), "password": Field("credential")},
    "bearer": {"token": Field("credential")},
    "oauth2_client_credentials": {
        "token_url": Field("template"),
        "client_id": Field("template"),
        "client_secret": Field("credential"),
        "scope": _optional("template"),
        "audience": _optional("template"),
        "client_auth": Field("choice", choices=CLIENT_AUTH_METHODS),
    },
    "hmac": {
        "secret": Field("credential"),
        "header": Field("header"),
        "message": Field("template", names=MESSAGE_NAMES),
        "algorithm": Field("choice", choices=HMAC_ALGORITHMS),
        "encoding": Field("choice", choices=HMAC_ENCODINGS),
        "timestamp_header": _optional("header"),
    },
    "aws_sigv4": {
        "access_key_id": Field("template"),
        "secret_access_key": Field("credential"),
        "session_token": _optional("credential"),
        "region": Field("template"),
        "service": Field("template"),
    },
}
# What any kind may add; null is the same as leaving it out.
COMMON_FIELDS = {"client_certificate": _optional("certificate"), "ca_bundle": _optional("template")}
CERTIFICATE_FIELDS = {"cert": Field("template"), "key": Field("credential")}
# The fields that hold credentials, which the runtime masks wherever they show.
CREDENTIAL_FIELDS = tuple(
    dict.fromkeys(
        name
        for fields in (*KIND_FIELDS.values(), CERTIFICATE_FIELDS)
        for name, field in fields.items()
        if field.shape == "credential"
    )
)


def validate_connection(definition: dict) -> None:
    """Raise ConnectionInvalid listing every problem of a connection's contract JSON."""
    errors = connection_errors(definition)
    if errors:
        raise ConnectionInvalid(errors)


def connection_errors(definition, *, prefix: str = "") -> list[str]:
    """Every problem of a connection's contract JSON (`name` and `kind` included), each
    placed below `prefix` (`connections[0]` in an import)."""
    if not isinstance(definition, dict):
        return [_error(prefix, "must be an object")]
    errors = unstorable_errors(definition, prefix)
    if errors:
        return errors
    errors = _name_errors(definition, prefix)
    kind = definition.get("kind")
    if not isinstance(kind, str) or kind not in KIND_FIELDS:
        reason = (
            "required" if "kind" not in definition else f"must be one of {_listed(KIND_FIELDS)}"
        )
        return [*errors, _error(join_place(prefix, ["kind"]), reason)]
    fields = {**KIND_FIELDS[kind], **COMMON_FIELDS}
    settings = {key: value for key, value in definition.items() if key not in ("name", "kind")}
    errors += _fields_errors(settings, fields, prefix, unknown=f'for kind "{kind}"')
    return errors + _api_key_header_errors(definition, prefix)


def connection_warnings(definition) -> list[str]:
    """Each secret the connection reads whose environment variable is not set on this
    machine, as `"<place>: <reason>"`: the workers' machines may have it, so it is saved."""
    if not isinstance(definition, dict):
        return []
    settings = {key: value for key, value in definition.items() if key not in ("name", "kind")}
    return unset_secret_warnings(settings, "", known=load_secrets())


def _name_errors(definition: dict, prefix: str) -> list[str]:
    place, name = join_place(prefix, ["name"]), definition.get("name")
    if "name" not in definition:
        return [_error(place, "required")]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return [_error(place, "use only letters, digits, '.', '-' and '_'")]
    if len(name) > NAME_MAX_LENGTH:
        return [_error(place, f"must be at most {NAME_MAX_LENGTH} characters")]
    return []


def _fields_errors(
    values: dict, fields: dict[str, Field], prefix: str, *, unknown: str
) -> list[str]:
    errors = [
        _error(join_place(prefix, [key]), f"unknown key {unknown}")
        for key in values
        if key not in fields
    ]
    for key, field in fields.items():
        place = join_place(prefix, [key])
        if key not in values or (values[key] is None and not field.required):
            if field.required:
                errors.append(_error(place, "required"))
            continue
        errors += _value_errors(values[key], field, place)
    return errors


def _api_key_header_errors(definition: dict, prefix: str) -> list[str]:
    """An API key sent as a header names that header: it must be a header name."""
    param = definition.get("param")
    if definition.get("in") == "header" and isinstance(param, str) and param:
        if not HEADER_NAME.match(param):
            return [_error(join_place(prefix, ["param"]), HEADER_NAME_REASON)]
    return []


def _value_errors(value, field: Field, place: str) -> list[str]:
    if field.shape == "certificate":
        if not isinstance(value, dict):
            return [_error(place, 'must be an object with "cert" and "key", or null')]
        return _fields_errors(value, CERTIFICATE_FIELDS, place, unknown="of a certificate")
    if field.shape == "choice":
        if value not in field.choices:
            return [_error(place, f"must be one of {_listed(field.choices)}")]
        return []
    if not isinstance(value, str):
        return [_error(place, "must be a string")]
    if field.shape == "credential":
        return _credential_errors(value, place)
    if field.shape in ("header", "text") and not value:
        return [_error(place, "must not be empty")]
    if field.shape == "header" and not HEADER_NAME.match(value):
        return [_error(place, HEADER_NAME_REASON)]
    return compile_errors(value, place) + name_errors(value, place, known=field.names)


def _credential_errors(value: str, place: str) -> list[str]:
    """A credential is one `{{ secrets.NAME }}` and nothing else; the value is never
    repeated, as it may be a credential written by mistake."""
    if SECRET_EXPRESSION.match(value):
        return []
    if "{{" not in value and "{%" not in value:
        return [_error(place, "must be a {{ secrets.NAME }} expression, not a literal credential")]
    return [
        _error(place, "must be exactly one {{ secrets.NAME }} expression, with nothing around it")
    ]


def _error(place: str, reason: str) -> str:
    return f"{place}: {reason}" if place else reason


def _listed(options) -> str:
    return ", ".join(json.dumps(option) for option in options)
