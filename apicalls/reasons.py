"""A failed attempt's own reason: its status and the partner's message.

The API call's `error_message` expression finds the message in the response; without
one, the message is read from the body shapes partners commonly answer with. The reason
is the attempt's error in the log and the order's `failed_reason` when the step fails.

>>> reason_for({}, {"status": 402, "headers": {}, "body": {"error": "card declined"}}, {})
'HTTP 402: card declined'
>>> reason_for({}, {"status": 422, "headers": {}, "body": {"error": {"message": "bad sku"}}}, {})
'HTTP 422: bad sku'
>>> reason_for({}, {"status": 500, "headers": {}, "body": None}, {})
'HTTP 500'
>>> call = {"error_message": "{{ response.body.problems[0].text }}"}
>>> reason_for(call, {"status": 400, "headers": {}, "body": {"problems": [{"text": "no"}]}}, {})
'HTTP 400: no'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from expressions import ExpressionError, render

# The longest partner's message kept: a reason is read in a list column.
MAX_MESSAGE_CHARS = 300
# Where partners put their reason, in the order tried: {"error": "..."},
# {"error": {"message": "..."}}, {"message": "..."}, {"detail": "..."} (DRF, RFC 7807),
# {"title": "..."}, {"error_description": "..."} (OAuth2), {"errors": [{"message": ...}]}.
MESSAGE_PATHS = (
    ("error", "message"),
    ("error", "description"),
    ("error",),
    ("message",),
    ("detail",),
    ("error_description",),
    ("title",),
    ("errors", 0, "message"),
    ("errors", 0, "detail"),
    ("errors", 0),
)


def reason_for(api_call: Mapping, response: Mapping, context: Mapping) -> str:
    """`HTTP <status>: <message>`, the message from `error_message` or the body."""
    status = f"HTTP {response.get('status')}"
    expression = api_call.get("error_message")
    if expression:
        try:
            message = render(expression, {**context, "response": response})
        except ExpressionError as exc:
            return f"{status} (error_message: {exc})"
    else:
        message = partner_message(response.get("body"))
    text = as_text(message)
    return f"{status}: {text}" if text else status


def partner_message(body: Any) -> Any:
    """The message a response body carries in a common shape, or None.

    >>> partner_message({"detail": "Not found."})
    'Not found.'
    >>> partner_message("upstream timed out")
    'upstream timed out'
    >>> partner_message({"total": 3}) is None
    True
    """
    if isinstance(body, str):
        return body if "<" not in body[:200] else None  # an HTML error page says nothing
    for path in MESSAGE_PATHS:
        value = _at(body, path)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return value
    return None


def as_text(message: Any) -> str:
    """The message on one line, cut to MAX_MESSAGE_CHARS."""
    if message is None or message == "":
        return ""
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        return text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def _at(value: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or len(value) <= key:
                return None
        elif not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value
