"""The names an expression starts from (`input`, `data`, `secrets`, …), read from its syntax
tree before it ever runs, so a definition that starts from a misspelt name (`inptu.qty`)
is refused when it is saved rather than failing an order later.

>>> expression_names("{{ inptu.qty | default(data.qty) ~ now() }}")
['data', 'inptu']
>>> secret_names("{{ secrets.SHOP_URL }}/x?key={{ secrets['SHOP_KEY'] }}")
['SHOP_KEY', 'SHOP_URL']
>>> name_errors({"url": "{{ inptu.qty }}"}, "", known=("input", "data"))
['url: "{{ inptu.qty }}": unknown name "inptu": did you mean "input"?']
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Collection
from typing import Any

from jinja2 import TemplateError, nodes

from expressions.language import environment, template_strings

# Every name of contract section 4; each place of a definition sees some of them.
ROOT_NAMES = (
    "input",
    "data",
    "order",
    "params",
    "response",
    "callback",
    "message",
    "item",
    "index",
    "results",
    "error",
    "secrets",
)


def order_name(*, order_id: str, workflow: str, created_at: str, run: int) -> dict:
    """What templates see as `order`, wherever they are rendered (steps, the concurrency
    key, `notify_url`).

    >>> order_name(order_id="A-1", workflow="shop", created_at="2026-01-01T00:00:00", run=2)
    {'order_id': 'A-1', 'workflow': 'shop', 'created_at': '2026-01-01T00:00:00', 'run': 2}
    """
    return {"order_id": order_id, "workflow": workflow, "created_at": created_at, "run": run}


@functools.lru_cache(maxsize=4096)
def _tree(source: str) -> nodes.Template | None:
    try:
        return environment().parse(source)
    except (TemplateError, RecursionError):
        return None  # what does not compile is compile_errors' to report


def expression_names(source: str) -> list[str]:
    """The names a template reads, sorted; functions and Jinja's globals (`range`) are not
    names it starts from. Empty when it does not compile."""
    tree = _tree(source)
    if tree is None:
        return []
    functions = environment().globals
    return sorted(
        {
            node.name
            for node in tree.find_all(nodes.Name)
            if node.ctx == "load" and node.name not in functions
        }
    )


def secret_names(source: str) -> list[str]:
    """The secrets a template reads by a literal name (`secrets.NAME`, `secrets["NAME"]`)."""
    tree = _tree(source)
    if tree is None:
        return []
    names = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "secrets":
            name = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
            if isinstance(name, str):
                names.add(name)
    return sorted(names)


def _constant(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def name_errors(value: Any, place: str, *, known: Collection[str]) -> list[str]:
    """Every name the templates in a JSON value start from that is not in `known`, as
    `"<place>: "<template>": <reason>"`, with the nearest known name when one is close."""
    errors = []
    for string_place, source in template_strings(value, place):
        for name in expression_names(source):
            if name not in known:
                errors.append(f'{string_place}: "{source}": {unknown_name_reason(name, known)}')
    return errors


def unknown_name_reason(name: str, known: Collection[str]) -> str:
    """Why `name` is refused where only `known` names are seen.

    >>> unknown_name_reason("response", ("input", "data"))
    '"response" is not available here; use input, data'
    """
    if name in ROOT_NAMES:
        return f'"{name}" is not available here; use {", ".join(known)}'
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f'unknown name "{name}": did you mean "{close[0]}"?'
    return f'unknown name "{name}": use {", ".join(known)}'
