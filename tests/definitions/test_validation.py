"""The validation rules of contract sections 2 and 3, with the exact message of each."""

import json
from pathlib import Path

import pytest

from definitions.validation import (
    DefinitionError,
    definition_warnings,
    validate_api_call,
    validate_blueprint,
)
from tests.blueprints import definitions
from tests.blueprints.definitions import API_CALL_SLUGS

ROOT = Path(__file__).resolve().parents[2]


def api_call_errors(definition: dict) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        validate_api_call(definition)
    return caught.value.errors


def blueprint_errors(definition: dict, slugs=API_CALL_SLUGS) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        validate_blueprint(definition, api_call_slugs=slugs)
    return caught.value.errors


def blueprint_with_steps(*steps: dict) -> dict:
    return {"slug": "flow", "name": "Flow", "steps": list(steps)}


# -- good definitions --------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(API_CALL_SLUGS))
def test_contract_example_api_calls_are_valid(slug):
    validate_api_call(definitions.api_call(slug))


def test_contract_example_blueprint_is_valid():
    validate_blueprint(definitions.blueprint(), api_call_slugs=API_CALL_SLUGS)


def test_get_with_empty_body_is_valid():
    validate_api_call({"slug": "a", "name": "A", "method": "GET", "url": "http://x", "body": {}})


# -- API call schema ---------------------------------------------------------------------


def test_missing_api_call_fields_are_each_named():
    assert api_call_errors({"slug": "a"}) == ["name: required", "method: required", "url: required"]


def test_api_call_field_errors_name_their_place():
    definition = definitions.api_call()
    definition["retry"]["backoff_rate"] = 0.5
    definition["headers"]["X-Count"] = 3
    definition["timeout_seconds"] = 0
    assert api_call_errors(definition) == [
        "headers.X-Count: must be a string",
        "retry.backoff_rate: must be at least 1",
        "timeout_seconds: must be greater than 0",
    ]


def test_api_call_method_must_be_an_http_method():
    definition = {**definitions.api_call(), "method": "FETCH"}
    assert api_call_errors(definition) == [
        'method: must be one of "GET", "POST", "PUT", "PATCH", "DELETE"'
    ]


def test_api_call_slug_allows_letters_digits_dot_dash_underscore():
    definition = {**definitions.api_call(), "slug": "payments charge"}
    assert api_call_errors(definition) == ["slug: use only letters, digits, '.', '-' and '_'"]


def test_api_call_unknown_keys_are_refused():
    definition = {**definitions.api_call(), "timeout": 5}
    definition["retry"]["attempts"] = 2
    assert api_call_errors(definition) == ["timeout: unknown key", "retry.attempts: unknown key"]


def test_get_with_a_body_is_refused():
    definition = {"slug": "a", "name": "A", "method": "GET", "url": "http://x", "body": {"q": 1}}
    assert api_call_errors(definition) == [
        "body: a GET request sends no body: leave it out or use {}"
    ]


def test_api_call_expression_that_does_not_compile_is_named():
    definition = {**definitions.api_call(), "success_when": "{{ response.status in [200 }}"}
    (error,) = api_call_errors(definition)
    assert error.startswith('success_when: "{{ response.status in [200 }}": ')


def test_api_call_expression_with_unknown_function_is_named():
    definition = definitions.api_call()
    definition["body"]["amount"] = "{{ data.total | cents }}"
    assert api_call_errors(definition) == [
        'body.amount: "{{ data.total | cents }}": unknown function "cents"'
    ]


# -- blueprint schema --------------------------------------------------------------------


def test_blueprint_needs_at_least_one_step():
    assert blueprint_errors(blueprint_with_steps()) == ["steps: must not be empty"]


def test_blueprint_step_field_error_names_its_place():
    definition = definitions.blueprint()
    definition["steps"][2]["retry"]["max_attempts"] = 0
    definition["steps"][4]["end"] = "done"
    assert blueprint_errors(definition) == [
        'steps[2] (id "charge").retry.max_attempts: must be at least 1',
        'steps[4] (id "review").end: must be one of "completed", "failed"',
    ]


def test_step_of_unknown_kind_is_named():
    definition = blueprint_with_steps({"id": "a", "wait": 5})
    assert blueprint_errors(definition) == [
        'steps[0] (id "a"): unknown step kind: use one of '
        '"call", "choice", "parallel", "end", "message", "map"'
    ]


def test_step_with_two_kinds_is_refused():
    definition = blueprint_with_steps({"id": "a", "call": "shop.quote", "parallel": []})
    assert blueprint_errors(definition) == [
        'steps[0] (id "a"): a step is one kind only, but has both "call" and "parallel"'
    ]


def test_step_is_checked_against_its_kind():
    definition = blueprint_with_steps(
        {"id": "a", "choice": [{"when": "{{ true }}"}], "defualt": "a"},
    )
    assert blueprint_errors(definition) == [
        'steps[0] (id "a").default: required',
        'steps[0] (id "a").defualt: unknown key',
        'steps[0] (id "a").choice[0].next: required',
    ]


def test_wait_for_callback_needs_a_positive_timeout():
    definition = blueprint_with_steps(
        {"id": "a", "call": "shop.quote", "wait_for_callback": {"timeout_seconds": 0}},
    )
    assert blueprint_errors(definition) == [
        'steps[0] (id "a").wait_for_callback.timeout_seconds: must be greater than 0'
    ]


def test_parallel_branch_cannot_choose_the_flow():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][0]["on_failed"] = "reject"
    assert blueprint_errors(definition) == [
        'steps[3] (id "fulfil").parallel[0] (id "ship").on_failed: not allowed in a parallel '
        "branch; put it on the parallel step"
    ]


# -- cross-checks ------------------------------------------------------------------------


def test_duplicate_step_ids_are_refused():
    definition = definitions.blueprint()
    definition["steps"][2]["id"] = "validate"
    errors = blueprint_errors(definition)
    assert (
        'steps[2] (id "validate").id: duplicate step id "validate", first used by steps[0]'
        in errors
    )


def test_parallel_branch_ids_count_as_step_ids():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][1]["id"] = "review"
    assert blueprint_errors(definition) == [
        'steps[4] (id "review").id: duplicate step id "review", first used by steps[3].parallel[1]'
    ]


def test_next_must_name_a_step():
    definition = definitions.blueprint()
    definition["steps"][0]["next"] = "route"
    definition["steps"][2]["next"] = "fulfill"
    assert blueprint_errors(definition) == ['steps[2] (id "charge").next: no step "fulfill"']


def test_on_failed_must_name_a_step():
    definition = definitions.blueprint()
    definition["steps"][3]["on_failed"] = "refnd"
    assert blueprint_errors(definition) == ['steps[3] (id "fulfil").on_failed: no step "refnd"']


def test_choice_default_and_branch_targets_must_name_steps():
    definition = definitions.blueprint()
    definition["steps"][1]["default"] = "charg"
    definition["steps"][1]["choice"][0]["next"] = "reveiw"
    assert blueprint_errors(definition) == [
        'steps[1] (id "route").default: no step "charg"',
        'steps[1] (id "route").choice[0].next: no step "reveiw"',
    ]


def test_flow_targets_are_top_level_steps_not_parallel_branches():
    definition = definitions.blueprint()
    definition["steps"][2]["next"] = "ship"
    assert blueprint_errors(definition) == ['steps[2] (id "charge").next: no step "ship"']


def test_call_must_name_an_api_call():
    definition = definitions.blueprint()
    definition["steps"][0]["call"] = "shop.quoet"
    assert blueprint_errors(definition) == [
        'steps[0] (id "validate").call: no API call "shop.quoet"'
    ]


def test_parallel_branch_call_must_name_an_api_call():
    slugs = API_CALL_SLUGS - {"mail.send"}
    assert blueprint_errors(definitions.blueprint(), slugs) == [
        'steps[3] (id "fulfil").parallel[1] (id "mail").call: no API call "mail.send"'
    ]


def test_choice_expression_that_does_not_compile_is_named():
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["when"] = "{{ data.total > }}"
    (error,) = blueprint_errors(definition)
    assert error.startswith('steps[1] (id "route").choice[0].when: "{{ data.total > }}": ')


def test_step_expression_with_unknown_function_is_named():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][0]["save"]["tracking"] = "{{ response.body | frist }}"
    assert blueprint_errors(definition) == [
        'steps[3] (id "fulfil").parallel[0] (id "ship").save.tracking: '
        '"{{ response.body | frist }}": unknown function "frist"'
    ]


def test_params_expressions_are_checked():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][1]["params"]["template"] = "{{ nope( }}"
    (error,) = blueprint_errors(definition)
    assert error.startswith(
        'steps[3] (id "fulfil").parallel[1] (id "mail").params.template: "{{ nope( }}": '
    )


def test_invalid_input_schema_is_refused():
    definition = definitions.blueprint()
    definition["input_schema"]["properties"]["qty"]["minimum"] = "one"
    assert blueprint_errors(definition) == [
        "input_schema: not a valid JSON Schema: properties.qty.minimum: 'one' is not of type "
        "'number'"
    ]


def test_input_schema_is_checked_against_its_declared_draft():
    definition = definitions.blueprint()
    definition["input_schema"] = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "exclusiveMinimum": 0,
    }
    assert blueprint_errors(definition) == [
        "input_schema: not a valid JSON Schema: exclusiveMinimum: 0 is not of type 'boolean'"
    ]


def test_every_problem_is_reported_at_once():
    definition = definitions.blueprint()
    definition["steps"][0]["call"] = "shop.quoet"
    definition["steps"][2]["on_failed"] = "refnd"
    definition["steps"][5]["end"] = "ok"
    errors = blueprint_errors(definition)
    assert errors == [
        'steps[5] (id "reject").end: must be one of "completed", "failed"',
        'steps[2] (id "charge").on_failed: no step "refnd"',
        'steps[0] (id "validate").call: no API call "shop.quoet"',
    ]


def test_definition_error_text_is_one_problem_per_line():
    error = DefinitionError(["url: required", "method: required"])
    assert str(error) == "url: required\nmethod: required"


def test_a_parallel_branch_cannot_wait_for_a_callback():
    branch = {"id": "ship", "call": "shipping.create", "wait_for_callback": {"timeout_seconds": 60}}
    definition = blueprint_with_steps({"id": "fulfil", "parallel": [branch]})
    errors = blueprint_errors(definition)
    assert len(errors) == 1
    assert errors[0].startswith('steps[0] (id "fulfil").parallel[0] (id "ship")')
    assert "wait_for_callback" in errors[0]


# -- the names an expression starts from -------------------------------------------------


def test_misspelt_root_is_refused_with_the_nearest_name():
    definition = definitions.blueprint()
    definition["steps"][0]["params"] = {"kind": "{{ inptu.kind }}"}
    assert blueprint_errors(definition) == [
        'steps[0] (id "validate").params.kind: "{{ inptu.kind }}": '
        'unknown name "inptu": did you mean "input"?'
    ]


def test_api_call_template_with_an_unknown_root_is_refused():
    definition = definitions.api_call()
    definition["body"]["amount"] = "{{ dta.total }}"
    assert api_call_errors(definition) == [
        'body.amount: "{{ dta.total }}": unknown name "dta": did you mean "data"?'
    ]


def test_name_far_from_any_root_lists_the_names_of_the_place():
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["when"] = "{{ customer.vip }}"
    assert blueprint_errors(definition) == [
        'steps[1] (id "route").choice[0].when: "{{ customer.vip }}": '
        'unknown name "customer": use input, data, order, error, secrets'
    ]


@pytest.mark.parametrize(
    ("key", "template", "name"),
    [
        ("url", "{{ response.body.next }}", "response"),
        ("headers", {"X-Status": "{{ response.status }}"}, "response"),
    ],
)
def test_response_is_unknown_before_the_call_is_sent(key, template, name):
    definition = {**definitions.api_call(), key: template}
    (error,) = api_call_errors(definition)
    assert f'"{name}" is not available here; use input, data, order, params, callback' in error


def test_a_choice_sees_neither_params_nor_a_response():
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["when"] = "{{ params.limit < response.status }}"
    errors = blueprint_errors(definition)
    assert [error.split(": ", 2)[2] for error in errors] == [
        '"params" is not available here; use input, data, order, error, secrets',
        '"response" is not available here; use input, data, order, error, secrets',
    ]


def test_every_root_is_known_where_the_engine_gives_it():
    definition = definitions.api_call()
    definition["body"] = {
        "a": "{{ input.a ~ data.b ~ order.order_id ~ params.c ~ error.message }}",
        "cb": "{{ callback.url }}",
        "s": "{{ secrets.TOKEN }}",
    }
    definition["success_when"] = "{{ response.status == 201 }}"
    definition["save"] = {"id": "{{ response.body.id }}", "late": "{{ callback.data.ok }}"}
    validate_api_call(definition)


def test_functions_and_globals_are_not_roots():
    definition = definitions.api_call()
    definition["body"]["ids"] = "{{ range(3) | list }}"
    definition["body"]["at"] = "{{ now() }}"
    definition["body"]["key"] = "{{ uuid() }}"
    validate_api_call(definition)


# -- steps never reached ------------------------------------------------------------------


def test_step_no_path_reaches_is_refused():
    steps = definitions.blueprint()["steps"]
    steps.insert(5, {"id": "refund", "call": "payments.charge", "next": "reject"})
    assert blueprint_errors(blueprint_with_steps(*steps)) == [
        'steps[5] (id "refund"): unreachable from the first step'
    ]


def test_a_step_reached_only_by_on_failed_is_reachable():
    definition = blueprint_with_steps(
        {"id": "charge", "call": "payments.charge", "on_failed": "refund", "end": "completed"},
        {"id": "refund", "call": "payments.charge"},
    )
    validate_blueprint(definition, api_call_slugs=API_CALL_SLUGS)


def test_call_and_parallel_steps_fall_through_to_the_following_step():
    definition = blueprint_with_steps(
        {"id": "quote", "call": "shop.quote"},
        {"id": "fulfil", "parallel": [{"id": "ship", "call": "shipping.create"}]},
        {"id": "mail", "call": "mail.send"},
    )
    validate_blueprint(definition, api_call_slugs=API_CALL_SLUGS)


def test_next_skips_the_steps_between():
    definition = blueprint_with_steps(
        {"id": "quote", "call": "shop.quote", "next": "mail"},
        {"id": "charge", "call": "payments.charge"},
        {"id": "mail", "call": "mail.send"},
    )
    assert blueprint_errors(definition) == [
        'steps[1] (id "charge"): unreachable from the first step'
    ]


def test_nothing_follows_an_end_or_a_choice_by_itself():
    definition = blueprint_with_steps(
        {"id": "route", "choice": [{"when": "{{ input.vip }}", "next": "vip"}], "default": "done"},
        {"id": "skipped", "call": "shop.quote"},
        {"id": "vip", "call": "ops.ticket", "end": "completed"},
        {"id": "after-end", "call": "mail.send"},
        {"id": "done", "end": "completed"},
        {"id": "after-done", "end": "failed"},
    )
    assert blueprint_errors(definition) == [
        'steps[1] (id "skipped"): unreachable from the first step',
        'steps[3] (id "after-end"): unreachable from the first step',
        'steps[5] (id "after-done"): unreachable from the first step',
    ]


def test_a_misspelt_target_is_named_without_the_steps_it_leaves_out():
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["next"] = "reveiw"
    assert blueprint_errors(definition) == [
        'steps[1] (id "route").choice[0].next: no step "reveiw"'
    ]


def test_demo_definitions_are_valid():
    document = json.loads((ROOT / "demo" / "definitions.json").read_text(encoding="utf-8"))
    slugs = {api_call["slug"] for api_call in document["api_calls"]}
    for api_call in document["api_calls"]:
        validate_api_call(api_call)
    for blueprint in document["blueprints"]:
        validate_blueprint(blueprint, api_call_slugs=slugs)


# -- warnings --------------------------------------------------------------------------------


def test_unset_secret_is_a_warning_naming_its_place(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_URL", "https://pay.example.test")
    monkeypatch.delenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", raising=False)
    definition = definitions.api_call()
    validate_api_call(definition)
    assert definition_warnings(definition) == [
        'headers.Authorization: secret "PAYMENTS_TOKEN" is not set on this machine '
        "(environment variable STATE_MANAGER_SECRET_PAYMENTS_TOKEN)"
    ]


def test_secrets_in_a_blueprint_step_are_warned_about_at_the_step(monkeypatch):
    monkeypatch.delenv("STATE_MANAGER_SECRET_MAIL_FROM", raising=False)
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][1]["params"]["from"] = "{{ secrets['MAIL_FROM'] }}"
    assert definition_warnings(definition) == [
        'steps[3] (id "fulfil").parallel[1] (id "mail").params.from: secret "MAIL_FROM" '
        "is not set on this machine (environment variable STATE_MANAGER_SECRET_MAIL_FROM)"
    ]


def test_no_warning_when_every_secret_is_set(monkeypatch):
    for name in ("PAYMENTS_URL", "PAYMENTS_TOKEN"):
        monkeypatch.setenv(f"STATE_MANAGER_SECRET_{name}", "set")
    assert definition_warnings(definitions.api_call()) == []
