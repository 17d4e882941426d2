"""XML text (a SOAP or other XML response body) read into a JSON object, safely.

The shape is xmltodict's: elements are keys, a repeated element is a list, an attribute
is `@name`, and an element's text is its value, or `#text` beside its attributes and
children. Names keep the prefix they are written with (`soap:Envelope`, `@xmlns:soap`);
with `prefixes=False` the prefixes and the `xmlns` declarations are dropped, for servers
that choose their own prefixes (`s:`, `soap:`, `SOAP-ENV:` all read as `Envelope`).

The text is read twice, both times by expat: first by defusedxml, which refuses any
`<!DOCTYPE` (so no entity can be declared: no billion laughs, no external entity) and
whose events bound the nesting before a value is built; then by xmltodict for the shape.

>>> read_xml('<order id="A-1"><line>TEE</line><line>CAP</line></order>')
{'order': {'@id': 'A-1', 'line': ['TEE', 'CAP']}}
>>> read_xml('<s:Envelope xmlns:s="urn:soap"><s:Body>ok</s:Body></s:Envelope>', prefixes=False)
{'Envelope': {'Body': 'ok'}}
"""

from __future__ import annotations

import io
from typing import Any
from xml.etree.ElementTree import ParseError

import xmltodict
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from expressions.guards import MAX_BODY_DEPTH, MAX_BODY_TEXT
from expressions.language import ExpressionError
from expressions.values import depth


def read_xml(text: Any, prefixes: bool = True) -> dict[str, Any]:
    """The object an XML text holds; raises ExpressionError for text that is not XML,
    that declares a DTD or entities, or that is too long or too deeply nested."""
    if not isinstance(text, str):
        raise ExpressionError(f"xml: expects text, not {type(text).__name__}")
    if len(text) > MAX_BODY_TEXT:
        raise ExpressionError(
            f"xml: text too large ({len(text)} characters, more than {MAX_BODY_TEXT})"
        )
    _check(text)
    value = xmltodict.parse(
        text, disable_entities=True, postprocessor=None if prefixes else _without_prefix
    )
    if depth(value, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
        raise ExpressionError(f"xml: nested deeper than {MAX_BODY_DEPTH} levels")
    return value


def _check(text: str) -> None:
    """Refuse DTDs and entities, text that is not XML, and elements nested too deep."""
    level = 0
    try:
        for event, element in iterparse(io.StringIO(text), ("start", "end"), forbid_dtd=True):
            level += 1 if event == "start" else -1
            if level > MAX_BODY_DEPTH:
                raise ExpressionError(f"xml: elements nested deeper than {MAX_BODY_DEPTH} levels")
            if event == "end":
                element.clear()  # what xmltodict builds is all that is kept
    except DefusedXmlException:
        raise ExpressionError("xml: DTDs and entities (<!DOCTYPE …>) are refused") from None
    except ParseError as exc:
        raise ExpressionError(f"xml: not XML ({exc})") from None


def _without_prefix(path: list, key: str, value: Any) -> tuple[str, Any] | None:
    """xmltodict's postprocessor for `prefixes=False`: `s:Body` → `Body`, `@xmlns…` dropped."""
    if key == "@xmlns" or key.startswith("@xmlns:"):
        return None
    marker = "@" if key.startswith("@") else ""
    return marker + key.rpartition(":")[2], value
