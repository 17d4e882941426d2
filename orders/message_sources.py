"""Message sources: a partner posts its own signed webhooks to `POST /api/messages/<name>/`
(contract section 11). A source says how to verify the signature over the raw body and
where the message's name, key and id are in the JSON body (expressions over `body` and
`headers`); the secret is only ever a `{{ secrets.NAME }}` expression.

>>> secret, body = "whsec_1", b'{"id": "evt_1"}'
>>> header = f"t=100,v1={sign(secret, f'100.'.encode() + body, 'hex')}"
>>> verify("stripe", secret, header, body, now=110, tolerance=300)
''
>>> verify("stripe", secret, header, body, now=1000, tolerance=300)
'the signature is 900 s old, more than the tolerance of 300 s'
>>> verify("hmac_base64", secret, sign(secret, body, "base64"), body, now=0, tolerance=0)
''
>>> verify("hmac_hex", secret, "00ff", body, now=0, tolerance=0)
'the signature does not match'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from connections.validation import HEADER_NAME, HEADER_NAME_REASON, SECRET_EXPRESSION
from core.errors import ServiceError, ServiceErrors
from core.storable import text_problem, unstorable
from definitions.services import canonical_json
from definitions.validation import unset_secret_warnings
from expressions import ExpressionError, compile_errors, render
from expressions.names import name_errors
from expressions.secrets import load_secrets
from orders.messages import Received, message_receive
from orders.models import MessageSource

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
NAME_MAX_LENGTH = 100
# What a source's expressions see: the webhook's JSON body and its headers (lower case).
EXPRESSION_NAMES = ("body", "headers")
KEYS = ("name", "secret", "signature", "message_name", "key", "id", "tolerance_seconds")
DEFAULT_TOLERANCE_SECONDS = 300
DAY = 86400  # the longest tolerance: a day-old signature is a replay whatever the partner
_SOURCE_FIELDS = {"name": "message_name", "key": "key", "sender_id": "id"}


class SourceInvalid(ServiceErrors):
    """A message source refused when saved: every problem as "place: reason"."""


class SourceNotFound(ServiceError):
    status_code = 404
    detail = "No message source has this name."


class SignatureRefused(ServiceError):
    """The webhook's signature did not verify: nothing is stored."""

    status_code = 401


@dataclass(frozen=True)
class Verdict:
    """What a webhook posted to a source came to (the admin's "send a test message")."""

    accepted: bool
    reason: str = ""
    received: Received | None = None


def source_errors(definition: object) -> list[str]:
    """Every problem of a source's JSON as "place: reason"."""
    if not isinstance(definition, dict):
        return ["must be an object"]
    errors = [f"{key}: unknown key" for key in definition if key not in KEYS]
    errors += [f"{key}: required" for key in KEYS[:5] if key not in definition]
    name = definition.get("name")
    if "name" in definition and not (
        isinstance(name, str) and NAME_PATTERN.match(name) and len(name) <= NAME_MAX_LENGTH
    ):
        errors.append(
            f"name: use only letters, digits, '.', '-' and '_', at most {NAME_MAX_LENGTH}"
        )
    secret = definition.get("secret")
    if "secret" in definition and not (
        isinstance(secret, str) and SECRET_EXPRESSION.match(secret) and len(secret) <= 200
    ):
        errors.append("secret: must be a {{ secrets.NAME }} expression, not a literal secret")
    errors += _signature_errors(definition.get("signature"), "signature" in definition)
    for key in ("message_name", "key", "id"):
        value = definition.get(key)
        if key not in definition or (key == "id" and value in ("", None)):
            continue
        if not isinstance(value, str) or not value or len(value) > 500:
            errors.append(f"{key}: must be an expression of at most 500 characters")
            continue
        errors += compile_errors(value, key) + name_errors(value, key, known=EXPRESSION_NAMES)
    tolerance = definition.get("tolerance_seconds", DEFAULT_TOLERANCE_SECONDS)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 0 <= tolerance <= DAY:
        errors.append("tolerance_seconds: must be a whole number of seconds from 0 to 86400")
    for path, problem in unstorable(definition):
        errors.append(f"{'.'.join(str(part) for part in path)}: {problem}")
    return errors


def source_warnings(definition: dict) -> list[str]:
    return unset_secret_warnings(definition.get("secret"), "secret", known=load_secrets())


def source_save(*, definition: dict, user=None) -> MessageSource:
    """Validate a source and create or update it by name; the same content writes nothing."""
    errors = source_errors(definition)
    if errors:
        raise SourceInvalid(errors)
    with transaction.atomic():
        source = MessageSource.objects.select_for_update().filter(name=definition["name"]).first()
        if source is None:
            source = MessageSource(name=definition["name"])
        elif canonical_json(source.as_definition()) == canonical_json(definition):
            return source
        source.secret = definition["secret"]
        source.signature_header = definition["signature"]["header"]
        source.scheme = definition["signature"]["scheme"]
        source.message_name = definition["message_name"]
        source.key = definition["key"]
        source.sender_id = definition.get("id") or ""
        source.tolerance_seconds = definition.get("tolerance_seconds", DEFAULT_TOLERANCE_SECONDS)
        try:
            with transaction.atomic():
                source.save()
        except IntegrityError as exc:
            raise SourceInvalid([f'name: message source "{source.name}" exists already']) from exc
    logger.info("message source %s saved by %s", source.name, getattr(user, "username", "-"))
    return source


def source_receive(*, name: str, headers: Mapping[str, str], body: bytes) -> Verdict:
    """A webhook posted to the source `name`: verified over the raw body, else refused
    with nothing stored; then the message its expressions find is received."""
    if text_problem(name):  # no source holds it (the URL middleware refuses it first)
        raise SourceNotFound(name)
    source = MessageSource.objects.filter(name=name).first()
    if source is None:
        raise SourceNotFound(name)
    verdict, found = source_check(source, headers=headers, body=body)
    if not verdict.accepted:
        return verdict
    return Verdict(True, received=message_receive(**found, source=source.name))


def source_check(
    source: MessageSource, *, headers: Mapping[str, str], body: bytes
) -> tuple[Verdict, dict]:
    """Verify a webhook and find its message (name, key, sender_id, data), storing
    nothing: the first half of receiving one, and the admin's "send a test message"."""
    headers = {key.lower(): value for key, value in headers.items()}
    secret = _secret(source)
    if not secret:
        return Verdict(False, f"the secret {source.secret} is not set on this machine"), {}
    reason = verify(
        source.scheme,
        secret,
        headers.get(source.signature_header.lower(), ""),
        body,
        now=time.time(),
        tolerance=source.tolerance_seconds,
    )
    if reason:
        return Verdict(False, reason), {}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise ServiceErrors(["body: must be JSON"]) from None
    context = {"body": parsed, "headers": headers}
    found: dict = {"data": parsed}
    for field, template in (
        ("name", source.message_name),
        ("key", source.key),
        ("sender_id", source.sender_id),
    ):
        try:
            value = render(template, context) if template else ""
        except ExpressionError as exc:
            raise ServiceErrors([f"{_SOURCE_FIELDS[field]}: {exc}"]) from None
        if value is None and field == "sender_id":
            value = ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        found[field] = value
    return Verdict(True), found


def signed_headers(source: MessageSource, body: bytes) -> dict[str, str]:
    """The signature header a partner would send with `body` (for a test message)."""
    secret = _secret(source)
    if not secret:
        return {}
    if source.scheme == MessageSource.Scheme.STRIPE:
        stamp = str(int(time.time()))
        value = f"t={stamp},v1={sign(secret, stamp.encode() + b'.' + body, 'hex')}"
    else:
        value = sign(secret, body, "hex" if source.scheme == "hmac_hex" else "base64")
    return {source.signature_header: value}


def sign(secret: str, payload: bytes, encoding: str) -> str:
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def verify(
    scheme: str, secret: str, header: str, body: bytes, *, now: float, tolerance: int
) -> str:
    """Why the signature `header` does not verify the body, or "" when it does."""
    if not header:
        return "no signature header"
    if scheme != "stripe":
        encoding = "hex" if scheme == "hmac_hex" else "base64"
        expected = sign(secret, body, encoding)
        given = header.strip().lower() if encoding == "hex" else header.strip()
        return "" if hmac.compare_digest(expected, given) else "the signature does not match"
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value.strip() for key, value in parts if key.strip() == "t"]
    signatures = [value.strip() for key, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return "the signature header is not t=<unix time>,v1=<signature>"
    expected = sign(secret, stamps[0].encode() + b"." + body, "hex")
    if not any(hmac.compare_digest(expected, given.lower()) for given in signatures):
        return "the signature does not match"
    age = now - int(stamps[0])
    if abs(age) > tolerance:
        return f"the signature is {age:.0f} s old, more than the tolerance of {tolerance} s"
    return ""


def _secret(source: MessageSource) -> str:
    try:
        value = render(source.secret, {"secrets": load_secrets()})
    except ExpressionError:
        return ""
    return value if isinstance(value, str) else ""


def _signature_errors(signature: object, present: bool) -> list[str]:
    if not present:
        return []
    if not isinstance(signature, dict):
        return ["signature: must be an object with header and scheme"]
    errors = [
        f"signature.{key}: unknown key" for key in signature if key not in ("header", "scheme")
    ]
    header = signature.get("header")
    if not isinstance(header, str) or not HEADER_NAME.match(header) or len(header) > 100:
        errors.append(f"signature.header: {HEADER_NAME_REASON}")
    if signature.get("scheme") not in MessageSource.Scheme.values:
        choices = ", ".join(f'"{value}"' for value in MessageSource.Scheme.values)
        errors.append(f"signature.scheme: must be one of {choices}")
    return errors
