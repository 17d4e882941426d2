"""Validation of API call and blueprint definitions (contract sections 2 and 3).

Every problem becomes one `"<place>: <reason>"` string, e.g. `steps[3] (id "refund").on_failed:
no step "refnd"` (each step on the way named by its index and its id), and all of them are
raised together in one `DefinitionError`, so the admin, the API and the import command can
show the whole list at once. What is doubtful but may be right on another machine (a secret
not set here) is a warning instead: `definition_warnings`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator, SchemaError, ValidationError, validators

from core.errors import ServiceErrors, join_place
from core.storable import shown, text_problem, unstorable, unstorable_fields
from definitions.graph import KINDS, declared_targets, step_kind, unreachable_steps
from definitions.map_steps import map_expression_places, map_shape_errors, unknown_key_reason
from expressions import compile_errors
from expressions.language import template_strings
from expressions.names import ROOT_NAMES, name_errors, secret_names
from expressions.secrets import PREFIX as SECRET_PREFIX
from expressions.secrets import load_secrets

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
API_CALL_SCHEMA = "api-call.schema.json"
BLUEPRINT_SCHEMA = "blueprint.schema.json"

BRANCH_FLOW_KEYS = ("next", "on_failed", "end")
UNREACHABLE = "unreachable from the first step"


def _names(*names: str) -> tuple[str, ...]:
    return tuple(name for name in ROOT_NAMES if name in names)


# The names the templates of each place see (contract section 4), as the engine gives them:
# `params` in the API call's templates, `response` once there is one, `callback` on a step
# that waits for one; a step's `params` are rendered before the call, a `when` alone.
_ALWAYS = ("input", "data", "order", "error", "secrets")
_REQUEST = _names(*_ALWAYS, "params", "callback")
_RESPONSE = _names(*_REQUEST, "response")
API_CALL_EXPRESSION_NAMES = {
    "url": _REQUEST,
    "headers": _REQUEST,
    "query": _REQUEST,
    "body": _REQUEST,
    "success_when": _RESPONSE,
    "error_message": _RESPONSE,
    "save": _RESPONSE,
}
STEP_EXPRESSION_NAMES = {"params": _names(*_ALWAYS), "save": _RESPONSE}
# A message step renders its key when it starts to wait, and its `save` with the message.
MESSAGE_KEY_NAMES = _names(*_ALWAYS)
MESSAGE_SAVE_NAMES = _names(*_ALWAYS, "message")
WHEN_NAMES = _names(*_ALWAYS)
# A blueprint's `notify_url` is rendered for each status change, away from any step.
NOTIFY_URL_NAMES = _names("input", "order")
# A blueprint's `concurrency_key` is rendered once, when an order is created.
CONCURRENCY_KEY_NAMES = _names("input", "order")

_TYPE_NAMES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}
_PATTERN_REASONS = {
    "^[A-Za-z0-9._-]+$": "use only letters, digits, '.', '-' and '_'",
    "^[A-Za-z_][A-Za-z0-9_]*$": "a name of letters, digits and '_', not starting with a digit",
}


class DefinitionError(ServiceErrors):
    """A definition was refused; `errors` lists every problem as `"<place>: <reason>"`."""

    joiner = "\n"


@cache
def load_schema(name: str) -> dict:
    """The JSON Schema document `name` from definitions/schemas."""
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@cache
def _validator(name: str, definition: str | None = None) -> Draft202012Validator:
    """A validator for a schema file, or for one of its `$defs` (with the file's refs)."""
    schema = load_schema(name)
    if definition is not None:
        schema = {**schema, "$ref": f"#/$defs/{definition}"}
        for key in ("type", "required", "properties", "additionalProperties", "if", "then"):
            schema.pop(key, None)
    return Draft202012Validator(schema)


def _error(place: str, reason: str) -> str:
    return f"{place}: {reason}" if place else reason


def iter_call_steps(steps: object) -> Iterator[tuple[list, dict]]:
    """(path, step) of every call step, parallel branches and maps' inner calls included."""
    for path, step in _all_steps(steps):
        if isinstance(step.get("call"), str):
            yield path, step


def api_call_slugs_used(steps: object) -> set[str]:
    """The slugs of the API calls a blueprint's steps call, parallel branches included."""
    return {step["call"] for _, step in iter_call_steps(steps)}


# -- JSON Schema errors in the contract's style ------------------------------------------


def _schema_errors(
    validator: Draft202012Validator, instance, prefix: str, root, base=()
) -> list[str]:
    """The schema's errors of `instance`, found at `base` in the definition `root`."""
    errors = []
    for error in sorted(validator.iter_errors(instance), key=_error_order):
        path = [*base, *error.absolute_path]
        if error.validator == "oneOf" and _is_step_path(path):
            errors.extend(_step_errors(error.instance, prefix, root, path))
        else:
            errors.extend(_describe(error, step_place(prefix, root, path), path))
    return list(dict.fromkeys(errors))  # one "required" error per missing key names them all


def _error_order(error: ValidationError) -> tuple:
    return tuple(
        (0, part, "") if isinstance(part, int) else (1, 0, part) for part in error.absolute_path
    )


def _is_step_path(path: list) -> bool:
    return len(path) == 2 and path[0] == "steps" and isinstance(path[1], int)


def _step_errors(step, prefix: str, root, path: list) -> list[str]:
    """Validate a step against the schema of the kind its keys name, for precise reasons."""
    place = step_place(prefix, root, path)
    if not isinstance(step, dict):
        return [_error(place, "must be an object")]
    kind = step_kind(step)
    if kind is None:
        present = [kind for kind in KINDS if kind != "end" and kind in step]
        if present:
            names = " and ".join(f'"{name}"' for name in present)
            return [_error(place, f"a step is one kind only, but has both {names}")]
        kinds = ", ".join(f'"{kind}"' for kind in KINDS)
        return [_error(place, f"unknown step kind: use one of {kinds}")]
    validator = _validator(BLUEPRINT_SCHEMA, f"{kind}_step")
    return _schema_errors(validator, step, prefix, root, base=path)


def _describe(error: ValidationError, place: str, path: list) -> list[str]:
    keyword, value = error.validator, error.validator_value
    if keyword == "required":
        missing = [key for key in value if key not in error.instance]
        return [_error(join_place(place, [key]), "required") for key in missing]
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        in_branch = len(path) >= 2 and path[-2] == "parallel"
        in_map = bool(path) and path[-1] == "map"
        return [
            _error(join_place(place, [key]), _unknown_key_reason(key, in_branch, in_map))
            for key in error.instance
            if key not in known
        ]
    return [_error(place, _reason(error))]


def _unknown_key_reason(key: str, in_branch: bool, in_map: bool) -> str:
    if in_map and unknown_key_reason(key):
        return unknown_key_reason(key)
    if in_branch and key in BRANCH_FLOW_KEYS:
        return "not allowed in a parallel branch; put it on the parallel step"
    return "unknown key"


def _reason(error: ValidationError) -> str:
    keyword, value = error.validator, error.validator_value
    if "then" in error.relative_schema_path:
        if "allOf" not in error.relative_schema_path:
            return "a GET request sends no body: leave it out or use {}"
        if value == "string":
            return 'with body_type "text", one string template (the body as sent)'
        return 'with body_type "form" or "multipart", an object of fields'

    if keyword == "type":
        names = [value] if isinstance(value, str) else value
        return "must be " + " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    if keyword == "enum":
        return "must be one of " + ", ".join(json.dumps(option) for option in value)
    if keyword == "pattern":
        return _PATTERN_REASONS.get(value, f"must match {value}")
    if keyword == "exclusiveMinimum":
        return f"must be greater than {value}"
    if keyword == "minimum":
        return f"must be at least {value}"
    if keyword in ("minItems", "minLength") and value == 1:
        return "must not be empty"
    if keyword == "maxLength":
        return f"must be at most {value} characters"
    return error.message


# -- the validators ------------------------------------------------------------------------


def api_call_errors(definition, *, prefix: str = "") -> list[str]:
    """Every problem of an API call definition (the contract JSON, slug and name included)."""
    errors = unstorable_errors(definition, prefix)
    if errors:
        return errors
    errors = _schema_errors(_validator(API_CALL_SCHEMA), definition, prefix, definition)
    if isinstance(definition, dict):
        errors.extend(_expression_errors(definition, prefix))
    return errors


def blueprint_errors(definition, *, api_call_slugs: set[str], prefix: str = "") -> list[str]:
    """Every problem of a blueprint definition, checked against the given API call slugs."""
    errors = unstorable_errors(definition, prefix)
    if errors:
        return errors
    errors = _schema_errors(_validator(BLUEPRINT_SCHEMA), definition, prefix, definition)
    if not isinstance(definition, dict):
        return errors
    if "input_schema" in definition:
        errors.extend(_input_schema_errors(definition["input_schema"], prefix))
    if isinstance(definition.get("steps"), list):
        errors.extend(_step_cross_errors(definition, api_call_slugs, prefix))
    return errors


def validate_api_call(definition: dict) -> None:
    """Raise DefinitionError listing every problem of an API call definition."""
    errors = api_call_errors(definition)
    if errors:
        raise DefinitionError(errors)


def validate_blueprint(definition: dict, *, api_call_slugs: set[str]) -> None:
    """Raise DefinitionError listing every problem of a blueprint definition.

    `call` targets are checked against `api_call_slugs`, the API calls that exist.
    """
    errors = blueprint_errors(definition, api_call_slugs=api_call_slugs)
    if errors:
        raise DefinitionError(errors)


def unstorable_errors(definition, prefix: str = "") -> list[str]:
    """Text PostgreSQL cannot store, anywhere in a definition, and nesting past the limit.

    Checked before anything else: the other checks would only repeat such text, and too
    deep a value could exhaust Python's recursion in them.
    """
    if isinstance(definition, dict):
        problems = unstorable_fields(definition)
    else:
        problems = unstorable(definition)
    return [_error(step_place(prefix, definition, path), why) for path, why in problems]


def step_place(prefix: str, definition, path: list) -> str:
    """The place of `path` in a definition, each step on the way named by its index and its
    id (`steps[2] (id "charge").retry`): an index alone is hard to find in a long blueprint."""
    place, node = prefix, definition
    parent_is_steps = parent_is_step = False
    for index, part in enumerate(path):
        is_step = parent_is_steps and isinstance(part, int)
        is_steps = (index == 0 and part == "steps") or (parent_is_step and part == "parallel")
        node = node[part] if _has(node, part) else None
        place = join_place(place, [part])
        step_id = node.get("id") if is_step and isinstance(node, dict) else None
        if _is_id(step_id) and not text_problem(step_id):
            place += f" (id {shown(step_id)})"
        parent_is_steps, parent_is_step = is_steps, is_step
    return place


def _has(node, part) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _input_schema_errors(input_schema, prefix: str) -> list[str]:
    if not isinstance(input_schema, dict):
        return []  # the blueprint schema already says it must be an object
    cls = validators.validator_for(input_schema, default=Draft202012Validator)
    try:
        cls.check_schema(input_schema)
    except SchemaError as exc:
        where = join_place("", exc.absolute_path)
        detail = f"{where}: {exc.message}" if where else exc.message
        return [_error(join_place(prefix, ["input_schema"]), f"not a valid JSON Schema: {detail}")]
    return []


def _step_cross_errors(definition: dict, api_call_slugs: set[str], prefix: str) -> list[str]:
    """Duplicate ids, flow targets, steps never reached, API calls and expressions."""
    steps = definition["steps"]
    errors = _duplicate_id_errors(definition, prefix) + _target_errors(definition, prefix)
    if not errors:  # a step left out by a misspelt target is that target's error
        errors += [
            _error(step_place(prefix, definition, ["steps", index]), UNREACHABLE)
            for index in unreachable_steps(steps)
        ]
    for index, step in enumerate(steps):
        if isinstance(step, dict) and "map" in step:
            errors += map_shape_errors(
                step["map"], step_place(prefix, definition, ["steps", index, "map"])
            )
    for path, step in iter_call_steps(steps):
        if step["call"] and step["call"] not in api_call_slugs:
            place = step_place(prefix, definition, [*path, "call"])
            errors.append(_error(place, f'no API call "{step["call"]}"'))
    return errors + _expression_errors(definition, prefix)


def _target_errors(definition: dict, prefix: str) -> list[str]:
    steps = definition["steps"]
    step_ids = {step["id"] for step in steps if isinstance(step, dict) and _is_id(step.get("id"))}
    return [
        _error(step_place(prefix, definition, path), f'no step "{target}"')
        for index, step in enumerate(steps)
        if isinstance(step, dict)
        for path, target in declared_targets(step, ["steps", index])
        if _is_id(target) and target not in step_ids
    ]


def _duplicate_id_errors(definition: dict, prefix: str) -> list[str]:
    errors, first_place = [], {}
    for path, step in _all_steps(definition["steps"]):
        step_id = step.get("id")
        if not _is_id(step_id):
            continue
        if step_id in first_place:
            reason = f'duplicate step id "{step_id}", first used by {first_place[step_id]}'
            errors.append(_error(step_place(prefix, definition, [*path, "id"]), reason))
        else:
            first_place[step_id] = join_place("", path)
    return errors


def _is_id(value) -> bool:
    return isinstance(value, str) and value != ""


def _all_steps(steps: object) -> Iterator[tuple[list, dict]]:
    """(path, step) of every step, each parallel branch right after its parallel step and
    a map's inner part (path `[..., "map"]`) right after its map step."""
    if not isinstance(steps, list):
        return
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        yield ["steps", index], step
        branches = step.get("parallel")
        if isinstance(branches, list):
            for branch_index, branch in enumerate(branches):
                if isinstance(branch, dict):
                    yield ["steps", index, "parallel", branch_index], branch
        if isinstance(step.get("map"), dict):
            yield ["steps", index, "map"], step["map"]


def _expression_places(definition: dict) -> Iterator[tuple[list, object, tuple[str, ...]]]:
    """(path, value, names it may use) of every place of a definition that holds templates."""
    steps = definition.get("steps")
    if "steps" not in definition:  # an API call
        for key, names in API_CALL_EXPRESSION_NAMES.items():
            if key in definition:
                yield [key], definition[key], names
        return
    if isinstance(definition.get("notify_url"), str):
        yield ["notify_url"], definition["notify_url"], NOTIFY_URL_NAMES
    if isinstance(definition.get("concurrency_key"), str):
        yield ["concurrency_key"], definition["concurrency_key"], CONCURRENCY_KEY_NAMES
    if not isinstance(steps, list):
        return
    yield from map_expression_places(steps, always=_names(*_ALWAYS), response=_RESPONSE)
    for path, step in iter_call_steps(steps):
        if path[-1] == "map":  # its templates see the item: map_expression_places
            continue
        for key, names in STEP_EXPRESSION_NAMES.items():
            if key in step:
                yield [*path, key], step[key], names
    for index, step in enumerate(steps):
        if isinstance(step, dict) and isinstance(step.get("message"), dict):
            if isinstance(step["message"].get("key"), str):
                yield ["steps", index, "message", "key"], step["message"]["key"], MESSAGE_KEY_NAMES
            if "save" in step:
                yield ["steps", index, "save"], step["save"], MESSAGE_SAVE_NAMES
        if isinstance(step, dict) and isinstance(step.get("choice"), list):
            for branch_index, branch in enumerate(step["choice"]):
                if isinstance(branch, dict) and isinstance(branch.get("when"), str):
                    yield (
                        ["steps", index, "choice", branch_index, "when"],
                        branch["when"],
                        WHEN_NAMES,
                    )


def _expression_errors(definition: dict, prefix: str) -> list[str]:
    """Templates that do not compile, use unknown functions or start from a name their
    place does not see, as the engine would judge them."""
    errors = []
    for path, value, names in _expression_places(definition):
        place = step_place(prefix, definition, path)
        errors += compile_errors(value, place) + name_errors(value, place, known=names)
    return errors


def definition_warnings(definition) -> list[str]:
    """What may be right elsewhere but is wrong here, as `"<place>: <reason>"`: each secret
    a template reads whose environment variable is not set on this machine (the web and
    the worker machines may differ, so saving goes on)."""
    if not isinstance(definition, dict):
        return []
    known = load_secrets()
    warnings = []
    for path, value, _ in _expression_places(definition):
        warnings += unset_secret_warnings(value, step_place("", definition, path), known=known)
    return warnings


def unset_secret_warnings(value, place: str, *, known: Collection[str]) -> list[str]:
    """A warning for each secret the templates in a JSON value read that is not in `known`
    (the secrets set on this machine)."""
    return [
        f'{string_place}: secret "{name}" is not set on this machine '
        f"(environment variable {SECRET_PREFIX}{name})"
        for string_place, source in template_strings(value, place)
        for name in secret_names(source)
        if name not in known
    ]
