"""A rendered body as it is sent, by the API call's `body_type` (contract section 2).

The bytes are made here, once, before the request is logged and sent: the step log shows
what went out, and a connection that signs the request (an HMAC, SigV4) signs those very
bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from urllib3.filepost import encode_multipart_formdata

from expressions import ExpressionError
from expressions.forms import encode_form

BODY_TYPES = ("json", "form", "multipart", "text")
CONTENT_TYPES = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "text": "text/plain; charset=utf-8",
}
FILE_KEYS = frozenset({"filename", "content_type", "content", "content_base64"})


@dataclass(frozen=True)
class EncodedBody:
    content: bytes
    content_type: str
    shown: Any  # what the step log shows: the JSON value, or the text as sent


def encode_body(body: Any, body_type: str) -> EncodedBody:
    """The bytes and Content-Type of a rendered body; raises ExpressionError for a body
    its type cannot send (a form that is not an object, a file part that is no file).

    >>> encode_body({"metadata": {"order_id": "A 1"}, "capture": True}, "form").shown
    'metadata%5Border_id%5D=A+1&capture=true'
    >>> encode_body("<a>1</a>", "text").content_type
    'text/plain; charset=utf-8'
    """
    if body_type == "json":
        text = json.dumps(body, allow_nan=False)  # as `requests` sends `json=`
        return EncodedBody(text.encode(), CONTENT_TYPES["json"], body)
    if body_type == "text":
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        return EncodedBody(text.encode(), CONTENT_TYPES["text"], text)
    if not isinstance(body, Mapping):
        raise ExpressionError(f'body: with body_type "{body_type}" it must give an object')
    if body_type == "form":
        try:
            text = urlencode(encode_form(body))
        except ValueError as exc:  # a key with a bracket, nesting too deep
            raise ExpressionError(str(exc).replace("form body", "body", 1)) from None
        return EncodedBody(text.encode("ascii"), CONTENT_TYPES["form"], text)
    if body_type == "multipart":
        return _multipart(body)
    raise ExpressionError(f'body_type: "{body_type}" is none of {", ".join(BODY_TYPES)}')


def _multipart(body: Mapping) -> EncodedBody:
    parts = []
    for name, value in body.items():
        values = value if isinstance(value, list) else [value]
        parts += [_part(str(name), item) for item in values if item is not None]
    content, content_type = encode_multipart_formdata(parts)
    try:
        shown: Any = content.decode()
    except UnicodeDecodeError:  # a binary file part: the log lists the parts instead
        shown = [_shown_part(part) for part in parts]
    return EncodedBody(content, content_type, shown)


def _part(name: str, value: Any) -> tuple:
    """A field as `(name, text)`, a file as `(name, (filename, bytes, content type))`."""
    if not (isinstance(value, Mapping) and "filename" in value):
        return name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    unknown = sorted(set(value) - FILE_KEYS)
    if unknown:
        raise ExpressionError(f"body.{name}: a file part has no key {unknown[0]!r}")
    if ("content" in value) == ("content_base64" in value):
        raise ExpressionError(f"body.{name}: a file part has one of content, content_base64")
    if "content" in value:
        data = str(value["content"]).encode()
    else:
        try:
            data = base64.b64decode(str(value["content_base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise ExpressionError(f"body.{name}.content_base64: not base64") from None
    content_type = str(value.get("content_type") or "application/octet-stream")
    return name, (str(value["filename"]), data, content_type)


def _shown_part(part: tuple) -> dict:
    name, value = part
    if isinstance(value, str):
        return {"name": name, "value": value}
    filename, data, content_type = value
    return {"name": name, "filename": filename, "content_type": content_type, "bytes": len(data)}
