"""Map steps refused at save with "place: reason" errors naming the step by index and id."""

import pytest

from definitions.validation import DefinitionError, api_call_slugs_used, validate_blueprint

SLUGS = {"stock.reserve", "ops.ticket"}


def errors_of(*steps: dict) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        validate_blueprint({"slug": "f", "name": "F", "steps": list(steps)}, api_call_slugs=SLUGS)
    return caught.value.errors


def reserve(**spec) -> dict:
    return {
        "id": "reserve",
        "map": {"items": "{{ input.lines }}", "call": "stock.reserve", **spec},
    }


def test_a_map_over_a_call_with_the_item_names_is_accepted():
    step = reserve(
        **{"as": "line", "max_concurrency": 5, "tolerated_failures": 1},
        params={"sku": "{{ line.sku }}", "position": "{{ index }}"},
        save={"reservation": "{{ response.body.id }}"},
        retry={"max_attempts": 3},
    )
    step["save"] = {"ids": "{{ results | map(attribute='reservation') | list }}"}
    validate_blueprint({"slug": "f", "name": "F", "steps": [step]}, api_call_slugs=SLUGS)


def test_a_map_over_a_child_blueprint_is_accepted():
    step = {
        "id": "fulfil",
        "map": {"items": "{{ input.parcels }}", "blueprint": "ship", "input": {"p": "{{ item }}"}},
    }
    validate_blueprint({"slug": "f", "name": "F", "steps": [step]}, api_call_slugs=SLUGS)


def test_the_inner_call_is_one_the_blueprint_uses():
    assert api_call_slugs_used([reserve()]) == {"stock.reserve"}


def test_an_unknown_inner_call_is_named():
    assert errors_of(reserve(call="stock.reserv")) == [
        'steps[0] (id "reserve").map.call: no API call "stock.reserv"'
    ]


def test_the_item_names_are_seen_inside_the_map_only():
    step = reserve(**{"as": "line"}, params={"sku": "{{ item.sku }}"})
    step["save"] = {"sku": "{{ line.sku }}", "i": "{{ index }}"}
    assert errors_of(step) == [
        'steps[0] (id "reserve").map.params.sku: "{{ item.sku }}": "item" is not available '
        "here; use input, data, order, error, secrets, line, index",
        'steps[0] (id "reserve").save.sku: "{{ line.sku }}": unknown name "line": use input, '
        "data, order, error, secrets, results",
        'steps[0] (id "reserve").save.i: "{{ index }}": "index" is not available here; use '
        "input, data, order, error, secrets, results",
    ]


def test_results_is_seen_by_the_map_steps_own_save_only():
    step = reserve(save={"r": "{{ results }}"})
    assert errors_of(step) == [
        'steps[0] (id "reserve").map.save.r: "{{ results }}": "results" is not available '
        "here; use input, data, order, params, response, callback, error, secrets, item, index"
    ]


def test_an_items_expression_from_an_unknown_name_is_refused():
    assert errors_of(reserve(items="{{ inptu.lines }}")) == [
        'steps[0] (id "reserve").map.items: "{{ inptu.lines }}": unknown name "inptu": '
        'did you mean "input"?'
    ]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"next": "x"}, "map.next: not allowed inside a map; put it on the map step"),
        ({"max_concurrency": 0}, "map.max_concurrency: must be at least 1"),
        (
            {"wait_for_callback": {"timeout_seconds": 5}},
            "map.wait_for_callback: not available inside a map: an item cannot wait for a callback",
        ),
        ({"tolerated_failures": -1}, "map.tolerated_failures: must be at least 0"),
        ({"as": "1st"}, "map.as: a name of letters, digits and '_', not starting with a digit"),
        ({"as": "data"}, 'map.as: "data" would hide the name data; choose another'),
        ({"blueprint": "ship"}, 'map: a map runs "call" or "blueprint", not both'),
        ({"input": {}}, 'map.input: only with "blueprint"'),
    ],
)
def test_a_bad_map_is_refused_at_its_place(spec, error):
    assert errors_of(reserve(**spec)) == [f'steps[0] (id "reserve").{error}']


def test_a_map_with_no_inner_work_says_what_it_needs():
    step = {"id": "m", "map": {"items": "{{ input.lines }}"}}
    assert errors_of(step) == [
        'steps[0] (id "m").map: needs "call" (an API call) or "blueprint" (a child blueprint)'
    ]


def test_a_child_blueprint_map_needs_its_input_and_no_call_keys():
    step = {"id": "m", "map": {"items": "{{ input.l }}", "blueprint": "ship", "params": {}}}
    assert errors_of(step) == [
        'steps[0] (id "m").map.params: only with "call"',
        'steps[0] (id "m").map.input: required',
    ]
