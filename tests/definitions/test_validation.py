"""The validation rules of contract sections 2 and 3, with the exact message of each."""

import pytest

from definitions.validation import DefinitionError, validate_api_call, validate_blueprint
from tests.blueprints import definitions
from tests.blueprints.definitions import API_CALL_SLUGS


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
        "steps[2].retry.max_attempts: must be at least 1",
        'steps[4].end: must be one of "completed", "failed"',
    ]


def test_step_of_unknown_kind_is_named():
    definition = blueprint_with_steps({"id": "a", "wait": 5})
    assert blueprint_errors(definition) == [
        'steps[0]: unknown step kind: use one of "call", "choice", "parallel", "end"'
    ]


def test_step_with_two_kinds_is_refused():
    definition = blueprint_with_steps({"id": "a", "call": "shop.quote", "parallel": []})
    assert blueprint_errors(definition) == [
        'steps[0]: a step is one kind only, but has both "call" and "parallel"'
    ]


def test_step_is_checked_against_its_kind():
    definition = blueprint_with_steps(
        {"id": "a", "choice": [{"when": "{{ true }}"}], "defualt": "a"},
    )
    assert blueprint_errors(definition) == [
        "steps[0].default: required",
        "steps[0].defualt: unknown key",
        "steps[0].choice[0].next: required",
    ]


def test_wait_for_callback_needs_a_positive_timeout():
    definition = blueprint_with_steps(
        {"id": "a", "call": "shop.quote", "wait_for_callback": {"timeout_seconds": 0}},
    )
    assert blueprint_errors(definition) == [
        "steps[0].wait_for_callback.timeout_seconds: must be greater than 0"
    ]


def test_parallel_branch_cannot_choose_the_flow():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][0]["on_failed"] = "reject"
    assert blueprint_errors(definition) == [
        "steps[3].parallel[0].on_failed: not allowed in a parallel branch; "
        "put it on the parallel step"
    ]


# -- cross-checks ------------------------------------------------------------------------


def test_duplicate_step_ids_are_refused():
    definition = definitions.blueprint()
    definition["steps"][2]["id"] = "validate"
    errors = blueprint_errors(definition)
    assert 'steps[2].id: duplicate step id "validate"' in errors


def test_parallel_branch_ids_count_as_step_ids():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][1]["id"] = "review"
    assert blueprint_errors(definition) == ['steps[4].id: duplicate step id "review"']


def test_next_must_name_a_step():
    definition = definitions.blueprint()
    definition["steps"][0]["next"] = "route"
    definition["steps"][2]["next"] = "fulfill"
    assert blueprint_errors(definition) == ['steps[2].next: no step "fulfill"']


def test_on_failed_must_name_a_step():
    definition = definitions.blueprint()
    definition["steps"][3]["on_failed"] = "refnd"
    assert blueprint_errors(definition) == ['steps[3].on_failed: no step "refnd"']


def test_choice_default_and_branch_targets_must_name_steps():
    definition = definitions.blueprint()
    definition["steps"][1]["default"] = "charg"
    definition["steps"][1]["choice"][0]["next"] = "reveiw"
    assert blueprint_errors(definition) == [
        'steps[1].default: no step "charg"',
        'steps[1].choice[0].next: no step "reveiw"',
    ]


def test_flow_targets_are_top_level_steps_not_parallel_branches():
    definition = definitions.blueprint()
    definition["steps"][2]["next"] = "ship"
    assert blueprint_errors(definition) == ['steps[2].next: no step "ship"']


def test_call_must_name_an_api_call():
    definition = definitions.blueprint()
    definition["steps"][0]["call"] = "shop.quoet"
    assert blueprint_errors(definition) == ['steps[0].call: no API call "shop.quoet"']


def test_parallel_branch_call_must_name_an_api_call():
    slugs = API_CALL_SLUGS - {"mail.send"}
    assert blueprint_errors(definitions.blueprint(), slugs) == [
        'steps[3].parallel[1].call: no API call "mail.send"'
    ]


def test_choice_expression_that_does_not_compile_is_named():
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["when"] = "{{ data.total > }}"
    (error,) = blueprint_errors(definition)
    assert error.startswith('steps[1].choice[0].when: "{{ data.total > }}": ')


def test_step_expression_with_unknown_function_is_named():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][0]["save"]["tracking"] = "{{ response.body | frist }}"
    assert blueprint_errors(definition) == [
        'steps[3].parallel[0].save.tracking: "{{ response.body | frist }}": '
        'unknown function "frist"'
    ]


def test_params_expressions_are_checked():
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][1]["params"]["template"] = "{{ nope( }}"
    (error,) = blueprint_errors(definition)
    assert error.startswith('steps[3].parallel[1].params.template: "{{ nope( }}": ')


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
        'steps[5].end: must be one of "completed", "failed"',
        'steps[2].on_failed: no step "refnd"',
        'steps[0].call: no API call "shop.quoet"',
    ]


def test_definition_error_text_is_one_problem_per_line():
    error = DefinitionError(["url: required", "method: required"])
    assert str(error) == "url: required\nmethod: required"


def test_a_parallel_branch_cannot_wait_for_a_callback():
    branch = {"id": "ship", "call": "shipping.create", "wait_for_callback": {"timeout_seconds": 60}}
    definition = blueprint_with_steps({"id": "fulfil", "parallel": [branch]})
    errors = blueprint_errors(definition)
    assert len(errors) == 1 and errors[0].startswith("steps[0].parallel[0]")
    assert "wait_for_callback" in errors[0]
