"""application/x-www-form-urlencoded text in bracket notation (Stripe's, Rack's, PHP's),
read into a JSON object and written from one: the two directions live here side by side.

- a nested object is `metadata[order_id]=A-1`,
- a list of objects (or of lists) is `items[0][sku]=TEE&items[0][qty]=1`,
- a list of scalars is `expand[]=x&expand[]=y`,
- a repeated plain key is a list too (`scope=a&scope=b`), on reading.

Form text has no types: every value read is text, and writing turns true and false into
the words `true` and `false`, numbers into their digits, and leaves null (and empty
lists and objects) out. A key that is not well-formed bracket notation (`a[b`, `[x]`,
`a[b]c`) is read as one plain key; a key holding a bracket cannot be written, since it
would be read back as structure.

>>> read_form("metadata[order_id]=A-1&items[0][sku]=TEE&expand[]=x&expand[]=y")
{'metadata': {'order_id': 'A-1'}, 'items': [{'sku': 'TEE'}], 'expand': ['x', 'y']}
>>> encode_form({"metadata": {"order_id": "A-1"}, "items": [{"sku": "TEE", "qty": 1}],
...              "expand": ["x", "y"], "capture": False, "coupon": None})
... # doctest: +NORMALIZE_WHITESPACE
[('metadata[order_id]', 'A-1'), ('items[0][sku]', 'TEE'), ('items[0][qty]', '1'),
 ('expand[]', 'x'), ('expand[]', 'y'), ('capture', 'false')]
>>> from urllib.parse import urlencode
>>> body = {"user": {"name": "Zoë Ü", "tags": ["a b", "c&d"]}, "n": 2.5}
>>> read_form(urlencode(encode_form(body)))
{'user': {'name': 'Zoë Ü', 'tags': ['a b', 'c&d']}, 'n': '2.5'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from expressions.guards import MAX_BODY_DEPTH, MAX_BODY_TEXT
from expressions.language import ExpressionError

MAX_PAIRS = 10_000
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_MAX_INDEX_DIGITS = 6  # `[123456]` is a position; longer digit runs are object keys


class _Items(dict):
    """A list while it is read: position → item, so `[3]` finds the same item each time."""


def read_form(text: Any) -> dict[str, Any]:
    """The object an urlencoded text holds (`+` is a space, `%xx` decoded as UTF-8);
    raises ExpressionError for a text too long, too many pairs, keys nested too deep, or
    keys that disagree (`a=1&a[b]=2`)."""
    if not isinstance(text, str):
        raise ExpressionError(f"form: expects text, not {type(text).__name__}")
    if len(text) > MAX_BODY_TEXT:
        raise ExpressionError(
            f"form: text too large ({len(text)} characters, more than {MAX_BODY_TEXT})"
        )
    text = text.strip()
    if text.count("&") >= MAX_PAIRS:
        raise ExpressionError(f"form: more than {MAX_PAIRS} pairs")
    result: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        path = split_key(key)
        if len(path) > MAX_BODY_DEPTH:
            raise ExpressionError(f'form: "{key}" is nested deeper than {MAX_BODY_DEPTH} levels')
        _put(result, path, value, key)
    return _finished(result)


def split_key(key: str) -> list[str]:
    """A key's path: its name, then each bracket's content; `""` is `[]` (append).

    >>> split_key("items[0][sku]"), split_key("expand[]"), split_key("a[b")
    (['items', '0', 'sku'], ['expand', ''], ['a[b'])
    """
    match = _KEY.fullmatch(key)
    if match is None:
        return [key]
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


def _is_index(segment: str) -> bool:
    return segment == "" or (segment.isdigit() and len(segment) <= _MAX_INDEX_DIGITS)


def _slot(container: dict, segment: str) -> Any:
    """The key in `container` that `segment` names: a position in a list, a key otherwise."""
    if isinstance(container, _Items):
        if segment == "":
            return max(container, default=-1) + 1
        return int(segment)
    return segment


def _put(result: dict, path: list[str], value: str, key: str) -> None:
    container: dict = result
    for segment, following in zip(path, path[1:], strict=False):
        slot = _slot(container, segment)
        child = container.get(slot)
        if child is None:
            child = container[slot] = _Items() if _is_index(following) else {}
        if not isinstance(child, dict) or isinstance(child, _Items) != _is_index(following):
            raise ExpressionError(f'form: "{key}" disagrees with an earlier key')
        container = child
    slot = _slot(container, path[-1])
    if slot not in container:
        container[slot] = value
    elif isinstance(container[slot], _Items):
        items = container[slot]
        items[max(items, default=-1) + 1] = value
    elif isinstance(container[slot], str):
        container[slot] = _Items({0: container[slot], 1: value})
    else:
        raise ExpressionError(f'form: "{key}" disagrees with an earlier key')


def _finished(value: Any) -> Any:
    """Lists read as position → item made lists, in order of position (depth is bounded)."""
    if isinstance(value, _Items):
        return [_finished(value[position]) for position in sorted(value)]
    if isinstance(value, dict):
        return {key: _finished(item) for key, item in value.items()}
    return value


def encode_form(value: Mapping) -> list[tuple[str, str]]:
    """The (key, value) pairs, in order and not yet urlencoded, of an object in bracket
    notation; raises ValueError for a value that is not an object, for a key holding a
    bracket, and for nesting deeper than MAX_BODY_DEPTH.

    >>> encode_form({"items": [{"sku": "TEE"}, None, {"sku": "CAP"}], "tags": [[1, 2]]})
    [('items[0][sku]', 'TEE'), ('items[2][sku]', 'CAP'), ('tags[0][]', '1'), ('tags[0][]', '2')]
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"form body: expects an object, not {type(value).__name__}")
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        _encode(_key_name(key), item, pairs, 1)
    return pairs


def _encode(prefix: str, value: Any, pairs: list[tuple[str, str]], level: int) -> None:
    if value is None:
        return
    if level > MAX_BODY_DEPTH:
        raise ValueError(f'form body: "{prefix}" is nested deeper than {MAX_BODY_DEPTH} levels')
    if isinstance(value, Mapping):
        for key, item in value.items():
            _encode(f"{prefix}[{_key_name(key)}]", item, pairs, level + 1)
    elif isinstance(value, list | tuple):
        scalars = not any(isinstance(item, Mapping | list | tuple) for item in value)
        for index, item in enumerate(value):
            _encode(f"{prefix}[{'' if scalars else index}]", item, pairs, level + 1)
    elif isinstance(value, bool):
        pairs.append((prefix, "true" if value else "false"))
    else:
        pairs.append((prefix, str(value)))


def _key_name(key: Any) -> str:
    name = str(key)
    if "[" in name or "]" in name:
        raise ValueError(f'form body: key "{name}" holds a bracket, which would be read as nesting')
    return name
