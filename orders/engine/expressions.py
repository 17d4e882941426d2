"""`{{ … }}` expressions in definitions: Jinja syntax, evaluated in a sandbox.

The rules the contract gives, and how they are kept here:

- A string that is one lone `{{ … }}` keeps the JSON type of its value; it is evaluated
  with `compile_expression`, so the value never goes through text (no `literal_eval`
  turning the text `"00123"` into the number 123). Any other string is rendered as text.
- Dictionary keys win over attributes: `input.items` is the key `items`, never the
  method, and a missing key is an error (`StrictUndefined`), also for a lone expression.
- Only expressions: `{% … %}` statements are refused, so there are no loops to run away.
- Guards that hold in any combination: every value an expression builds (by an
  operator, `~`, a list, tuple or dict literal, a function or a method) is bounded
  before it is built, counting nested items and the characters of nested strings
  (`MAX_WEIGHT`), and integers are bounded in bits (`MAX_INT_BITS`), so no single
  operation runs long enough to starve the worker's other threads (its lease
  heartbeat). `range` is capped, `%`-formats and widths are checked, and an expression
  that runs past its time budget stops at its next operation or function call.

>>> render({"qty": "{{ input.qty }}", "label": "{{ input.sku }} x{{ input.qty }}"},
...        {"input": {"qty": 3, "sku": "TEE"}})
{'qty': 3, 'label': 'TEE x3'}
>>> render("{{ input.code }}", {"input": {"code": "00123"}})
'00123'
>>> render("{{ input.items }}", {"input": {"items": [1, 2]}})
[1, 2]
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from orders.engine import functions

MAX_RANGE = 10_000
MAX_SIZE = 100_000  # characters of a string, items of a list, made by one operation
MAX_MADE = 2_000_000  # characters and items made by all the operations of one evaluation
MAX_POWER_EXPONENT = 1_000
# Items, keys and characters of one value, nested ones included and each reference counted
# (`[x] * 1000` weighs a thousand x's): about what a 1 MiB webhook body can hold.
MAX_WEIGHT = 1_000_000
MAX_INT_BITS = 64 * 1024
MAX_JSON_INDENT = 16
MAX_SOURCE_LENGTH = 20_000
TIME_BUDGET_SECONDS = 1.0


class ExpressionError(Exception):
    """An expression that does not compile or fails when evaluated; the message names it."""


class _Budget(threading.local):
    """Per evaluation: when it must stop, and how many characters or items it made so far."""

    deadline: float = float("inf")
    made: int = 0


_budget = _Budget()


def _check_time() -> None:
    if time.monotonic() > _budget.deadline:
        raise SecurityError(f"took longer than {TIME_BUDGET_SECONDS:g}s of CPU time")


def _check_size(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict | bytes):
        if len(value) > MAX_SIZE:
            raise SecurityError(f"result too large ({len(value)} > {MAX_SIZE} characters or items)")
        _budget.made += len(value)
        if _budget.made > MAX_MADE:
            raise SecurityError(f"made too much data (more than {MAX_MADE} characters or items)")
    return value


def weight(value: Any, limit: int = MAX_WEIGHT) -> int:
    """Items, keys and characters in `value`, nested ones included; the walk stops once
    it passes `limit` (so it costs at most `limit` steps, however big the value is).

    >>> weight({"a": [1, "xyz"]})
    7
    """
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 1
        elif isinstance(item, dict):
            total += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset | range):
            total += 1 + (len(item) if isinstance(item, range) else 0)
            if not isinstance(item, range):
                stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1 + item.bit_length() // 64
        else:
            total += 1
    return total


def _check_weight(value: Any, what: str = "value", limit: int = MAX_WEIGHT) -> Any:
    if weight(value, limit) > limit:
        raise SecurityError(f"{what} too large (more than {limit} items and characters)")
    return value


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"number too large (more than {MAX_INT_BITS} bits)")
    return value


def _int_bits_after(operator_name: str, left: Any, right: Any) -> int:
    """A bound on the bits of an integer `left <op> right` before it is computed."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return 0
    if operator_name == "**":
        return left.bit_length() * max(right, 0)
    if operator_name == "*":
        return left.bit_length() + right.bit_length()
    return max(left.bit_length(), right.bit_length()) + 1


def _repeat_size(left: Any, right: Any) -> int:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            return len(sequence) * max(count, 0)
    return 0


def capped_range(*args: int) -> range:
    """Jinja's `range`, capped at MAX_RANGE items."""
    _check_time()
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range too large ({len(result)} > {MAX_RANGE} items)")
    return result


class _GuardedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with `~` and list, tuple and dict literals going through
    the environment's checks (they are plain Python in the generated code otherwise)."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.checked_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame) -> None:
        self.write("environment.checked_literal(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame) -> None:
        if node.ctx != "load":
            super().visit_Tuple(node, frame)
            return
        self.write("environment.checked_literal(")
        super().visit_Tuple(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame) -> None:
        self.write("environment.checked_literal(")
        super().visit_Dict(node, frame)
        self.write(")")


class ExpressionEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with dictionary keys before attributes and the resource guards."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context, operator_name: str, left: Any, right: Any) -> Any:
        _check_time()
        if operator_name == "*":
            count = _repeat_size(left, right)
            if count > MAX_SIZE:
                raise SecurityError(
                    f"repetition too large (more than {MAX_SIZE} characters or items)"
                )
            if count:
                sequence, times = (left, right) if isinstance(right, int) else (right, left)
                if weight(sequence) * max(times, 0) > MAX_WEIGHT:
                    raise SecurityError(f"repetition too large (more than {MAX_WEIGHT} in all)")
        if (
            operator_name == "**"
            and isinstance(right, int | float)
            and abs(right) > MAX_POWER_EXPONENT
        ):
            raise SecurityError(f"exponent too large (more than {MAX_POWER_EXPONENT})")
        if _int_bits_after(operator_name, left, right) > MAX_INT_BITS:
            raise SecurityError(f"number too large (more than {MAX_INT_BITS} bits)")
        if operator_name == "+" and not isinstance(left, int | float):
            if weight(left) + weight(right) > MAX_WEIGHT:
                raise SecurityError(f"sum too large (more than {MAX_WEIGHT} in all)")
        if operator_name == "%" and isinstance(left, str):
            return _check_size(_guarded_format(left, right))
        return _check_int(_check_size(self.binop_table[operator_name](left, right)))

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """A function or method call: its arguments and what it makes are bounded."""
        _check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple | dict):
            numbers = [a for a in (*args, *kwargs.values()) if isinstance(a, int)]
            if any(abs(number) > MAX_SIZE for number in numbers):
                raise SecurityError(f"{__obj.__name__}: argument too large (more than {MAX_SIZE})")
        _check_weight((args, kwargs), "arguments")
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_int(_check_size(result))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `format_map` (the sandbox wraps them when they are looked up),
        refused when a width in the template or the arguments is too large."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            values += [v for a in args if isinstance(a, Mapping) for v in a.values()]
            numbers = _numbers_in(template) + [v for v in values if isinstance(v, int)]
            if any(abs(number) > MAX_SIZE for number in numbers):
                raise SecurityError(f"format: width too large (more than {MAX_SIZE})")
            return wrapped(*args, **kwargs)

        return checked

    def checked_concat(self, parts: tuple) -> str:
        """`a ~ b ~ …`: refused before the text is made when it would be too long."""
        _check_time()
        _check_weight(parts, "text", MAX_SIZE)
        return _check_size("".join(str(part) for part in parts))

    def checked_literal(self, value: Any) -> Any:
        _check_time()
        return _check_weight(value, "list")

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            return self._key(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping):
            return self._key(obj, argument)
        return super().getitem(obj, argument)

    def _key(self, obj: Mapping, key: Any) -> Any:
        try:
            return obj[key]
        except (KeyError, TypeError):
            return self.undefined(obj=obj, name=key)


def _numbers_in(text: str) -> list[int]:
    return [int(n) for n in "".join(ch if ch.isdigit() else " " for ch in text).split()]


def _output(value: Any) -> Any:
    """Each `{{ … }}` of a text template, checked before it is turned into text."""
    return _check_weight(value, "text", MAX_SIZE)


def _guarded_format(template: str, values: Any) -> str:
    """`"%s" % x` with widths and precisions limited, since `"%999999999d"` would fill memory."""
    if any(number > MAX_SIZE for number in _numbers_in(template)):
        raise SecurityError(f"format width too large (more than {MAX_SIZE})")
    return operator.mod(template, values)


def _guarded(func: Callable) -> Callable:
    """A function that checks the time budget before it runs and the size of what it made."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        _check_weight((args, kwargs), "arguments")
        return _check_int(_check_size(func(*args, **kwargs)))

    return guarded


def _join(join: Callable) -> Callable:
    """Jinja's `join`, refused before it runs when the joined text would be too large."""

    @functools.wraps(join)
    def checked(eval_ctx, value: Iterable, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        if attribute is None:
            size = len(str(d)) * max(len(items) - 1, 0) + sum(len(str(item)) for item in items)
            if size > MAX_SIZE:
                raise SecurityError(f"join: result too large (more than {MAX_SIZE} characters)")
        return join(eval_ctx, items, d, attribute)

    return checked


def _replace(replace: Callable) -> Callable:
    """Jinja's `replace`, refused before it runs when the result would be too large."""

    @functools.wraps(replace)
    def checked(eval_ctx, s: str, old: str, new: str, count: int | None = None) -> str:
        text = str(s)
        growth = text.count(old) * max(len(new) - len(old), 0) if old else len(new) * len(text)
        if len(text) + growth > MAX_SIZE:
            raise SecurityError(f"replace: result too large (more than {MAX_SIZE} characters)")
        return replace(eval_ctx, s, old, new, count)

    return checked


def _tojson(tojson: Callable) -> Callable:
    """Jinja's `tojson`, with an indent small enough that the text stays near the value's size."""

    @functools.wraps(tojson)
    def checked(eval_ctx, value: Any, indent: int | None = None) -> str:
        if indent is not None and not 0 <= indent <= MAX_JSON_INDENT:
            raise SecurityError(f"tojson: indent must be between 0 and {MAX_JSON_INDENT}")
        return tojson(eval_ctx, value, indent)

    return checked


def _widths_checked(func: Callable) -> Callable:
    """`center`, `indent`, `format`: refused when a width or count in them is too large."""

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        numbers = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, int)]
        if isinstance(args[0], str):
            numbers += _numbers_in(args[0])
        if any(number > MAX_SIZE for number in numbers):
            raise SecurityError(f"{func.__name__}: width too large (more than {MAX_SIZE})")
        return func(*args, **kwargs)

    return checked


@functools.cache
def environment() -> ExpressionEnvironment:
    env = ExpressionEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_output)
    env.filters["join"] = _join(env.filters["join"])
    env.filters["replace"] = _replace(env.filters["replace"])
    env.filters["tojson"] = _tojson(env.filters["tojson"])
    for name in ("center", "indent", "format"):
        env.filters[name] = _widths_checked(env.filters[name])
    for name, func in list(env.filters.items()):
        env.filters[name] = _guarded(func)
    env.globals = {"range": capped_range}

    def add_function(name: str, func: Callable) -> None:
        env.filters[name] = _guarded(func)
        env.globals[name] = _guarded(func)

    functions.on_register(add_function)
    return env


# Compiling.


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> Callable[[dict], Any]:
    """A function from context to value for one string; raises ExpressionError."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"longer than {MAX_SOURCE_LENGTH} characters")
    env = environment()
    try:
        tree = env.parse(source)
        _check_tree(tree, env)
        lone = _lone_expression(tree, source)
        if lone is not None:
            expression = env.compile_expression(lone, undefined_to_none=False)
            return lambda context: _json_value(_check_weight(expression(context), "result"))
        template = env.from_string(tree)
        return lambda context: _check_size(template.render(context))
    except TemplateError as exc:
        raise ExpressionError(exc.message or str(exc)) from None
    except RecursionError:
        raise ExpressionError("nested too deeply") from None


def _lone_expression(tree: nodes.Template, source: str) -> str | None:
    """The expression's source when the whole string is one `{{ … }}`, else None."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = tree.body[0].nodes
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    inner = source.strip()
    if not (inner.startswith("{{") and inner.endswith("}}")) or inner != source:
        return None
    return inner[2:-2].removeprefix("-").removesuffix("-")


def _check_tree(tree: nodes.Template, env: ExpressionEnvironment) -> None:
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            raise ExpressionError("statements ({% … %}) are not allowed; use {{ … }} expressions")
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name not in env.globals:
            raise ExpressionError(f'unknown function "{call.node.name}"')
    for filter_node in tree.find_all(nodes.Filter):
        if filter_node.name not in env.filters:
            raise ExpressionError(f'unknown function "{filter_node.name}"')
    for test in tree.find_all(nodes.Test):
        if test.name not in env.tests:
            raise ExpressionError(f'unknown test "{test.name}"')


def _json_value(value: Any) -> Any:
    """A lone expression's value as JSON: sequences become lists, other objects text."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, Iterable):
        items = []
        for item in value:
            items.append(_json_value(item))
            if len(items) > MAX_SIZE:
                raise SecurityError(f"result too large (more than {MAX_SIZE} items)")
        return items
    return str(value)


# Evaluating.


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """One string's value; strings without `{{` or `{%` are returned as they are."""
    if "{{" not in source and "{%" not in source:
        return source
    try:
        compiled = _compile(source)
    except ExpressionError as exc:
        raise ExpressionError(f'"{source}": {exc}') from None
    _budget.deadline = time.monotonic() + TIME_BUDGET_SECONDS
    _budget.made = 0
    try:
        return compiled(dict(context))
    except ExpressionError as exc:
        raise ExpressionError(f'"{source}": {exc}') from None
    except (TemplateError, SecurityError) as exc:
        raise ExpressionError(f'"{source}": {exc.message or exc}') from None
    except RecursionError:
        raise ExpressionError(f'"{source}": nested too deeply') from None
    except MemoryError:
        raise ExpressionError(f'"{source}": ran out of memory') from None
    except Exception as exc:  # a function's own error: wrong type, bad value, division by 0
        raise ExpressionError(f'"{source}": {type(exc).__name__}: {exc}') from None
    finally:
        _budget.deadline = float("inf")


def render(value: Any, context: Mapping[str, Any], place: str = "") -> Any:
    """Every string inside a JSON value evaluated; errors are prefixed with their place."""
    if isinstance(value, str):
        try:
            return evaluate(value, context)
        except ExpressionError as exc:
            raise ExpressionError(f"{place}: {exc}" if place else str(exc)) from None
    if isinstance(value, Mapping):
        return {key: render(item, context, _place(place, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context, f"{place}[{index}]") for index, item in enumerate(value)]
    return value


def is_true(source: str, context: Mapping[str, Any]) -> bool:
    """A condition (`when`, `success_when`): a lone expression's truth, or text "true"."""
    value = evaluate(source, context)
    if isinstance(value, str) and value != source:
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def compile_errors(value: Any, place: str) -> list[str]:
    """Every string in a JSON value that does not compile, as `"<place>: <reason>"`.

    >>> compile_errors({"when": "{{ data.total | nosuch }}", "ok": "{{ input.a }}"}, "steps[1]")
    ['steps[1].when: "{{ data.total | nosuch }}": unknown function "nosuch"']
    """
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return []
        try:
            _compile(value)
        except ExpressionError as exc:
            return [f'{place}: "{value}": {exc}']
        return []
    errors: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            errors += compile_errors(item, _place(place, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors += compile_errors(item, f"{place}[{index}]")
    return errors


def _place(place: str, key: Any) -> str:
    return f"{place}.{key}" if place else str(key)
