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
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from expressions.guards import (
    MAX_INT_BITS,
    MAX_POWER_EXPONENT,
    MAX_SIZE,
    MAX_SOURCE_LENGTH,
    MAX_WEIGHT,
    budget,
    capped_range,
    check_int,
    check_size,
    check_time,
    check_weight,
    checked_join,
    checked_output,
    checked_replace,
    checked_tojson,
    guarded,
    guarded_format,
    int_bits_after,
    numbers_in,
    repeat_size,
    weight,
    widths_checked,
)
from expressions.registry import FUNCTIONS, on_register


class ExpressionError(Exception):
    """An expression that does not compile or fails when evaluated; the message names it."""


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
        check_time()
        if operator_name == "*":
            count = repeat_size(left, right)
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
        if int_bits_after(operator_name, left, right) > MAX_INT_BITS:
            raise SecurityError(f"number too large (more than {MAX_INT_BITS} bits)")
        if operator_name == "+" and not isinstance(left, int | float):
            if weight(left) + weight(right) > MAX_WEIGHT:
                raise SecurityError(f"sum too large (more than {MAX_WEIGHT} in all)")
        if operator_name == "%" and isinstance(left, str):
            return check_size(guarded_format(left, right))
        return check_int(check_size(self.binop_table[operator_name](left, right)))

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """A function or method call: its arguments and what it makes are bounded."""
        check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple | dict):
            numbers = [a for a in (*args, *kwargs.values()) if isinstance(a, int)]
            if any(abs(number) > MAX_SIZE for number in numbers):
                raise SecurityError(f"{__obj.__name__}: argument too large (more than {MAX_SIZE})")
        check_weight((args, kwargs), "arguments")
        result = super().call(__context, __obj, *args, **kwargs)
        return check_int(check_size(result))

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
            numbers = numbers_in(template) + [v for v in values if isinstance(v, int)]
            if any(abs(number) > MAX_SIZE for number in numbers):
                raise SecurityError(f"format: width too large (more than {MAX_SIZE})")
            return wrapped(*args, **kwargs)

        return checked

    def checked_concat(self, parts: tuple) -> str:
        """`a ~ b ~ …`: refused before the text is made when it would be too long."""
        check_time()
        check_weight(parts, "text", MAX_SIZE)
        return check_size("".join(str(part) for part in parts))

    def checked_literal(self, value: Any) -> Any:
        check_time()
        return check_weight(value, "list")

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


@functools.cache
def environment() -> ExpressionEnvironment:
    env = ExpressionEnvironment(
        undefined=StrictUndefined, autoescape=False, finalize=checked_output
    )
    env.filters["join"] = checked_join(env.filters["join"])
    env.filters["replace"] = checked_replace(env.filters["replace"])
    env.filters["tojson"] = checked_tojson(env.filters["tojson"])
    for name in ("center", "indent", "format"):
        env.filters[name] = widths_checked(env.filters[name])
    for name, func in list(env.filters.items()):
        env.filters[name] = guarded(func)
    env.globals = {"range": capped_range}

    def add_function(name: str, func: Callable) -> None:
        env.filters[name] = guarded(func)
        env.globals[name] = guarded(func)

    on_register(add_function)
    return env


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    signature: str
    doc: str
    builtin: bool


def registered_functions() -> list[FunctionInfo]:
    """The project's functions and Jinja's built-in filters, by name, for the admin."""
    project = {
        name: FunctionInfo(name, _signature(f), _doc(f), False) for name, f in FUNCTIONS.items()
    }
    builtin = {
        name: FunctionInfo(name, _signature(f), _doc(f), True)
        for name, f in environment().filters.items()
        if name not in project
    }
    return sorted([*project.values(), *builtin.values()], key=lambda info: info.name)


def _signature(func: Callable) -> str:
    func = inspect.unwrap(func)
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return "(...)"
    shown = [p for p in parameters if p.name not in ("context", "eval_ctx", "environment")]
    return "(" + ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in shown) + ")"


def _doc(func: Callable) -> str:
    return inspect.cleandoc(inspect.unwrap(func).__doc__ or "").split("\n\n")[0]


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
            return lambda context: _json_value(check_weight(expression(context), "result"))
        template = env.from_string(tree)
        return lambda context: check_size(template.render(context))
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
    budget.start()
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
        budget.stop()


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
    errors = []
    for string_place, source in template_strings(value, place):
        try:
            _compile(source)
        except ExpressionError as exc:
            errors.append(f'{string_place}: "{source}": {exc}')
    return errors


def template_strings(value: Any, place: str) -> Iterator[tuple[str, str]]:
    """(place, string) of every string in a JSON value that holds `{{` or `{%`.

    >>> list(template_strings({"a": ["x", "{{ input.b }}"]}, "body"))
    [('body.a[1]', '{{ input.b }}')]
    """
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield place, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from template_strings(item, _place(place, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from template_strings(item, f"{place}[{index}]")


def _place(place: str, key: Any) -> str:
    return f"{place}.{key}" if place else str(key)
