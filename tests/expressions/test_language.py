"""Expressions: native types, strict names, keys before attributes, the sandbox and its guards."""

import threading
import time

import pytest

from expressions import ExpressionError, compile_errors, guards, is_true, render

CONTEXT = {
    "input": {"qty": 3, "code": "00123", "flag": "True", "items": [1, 2], "lines": [{"a": 1}]},
    "data": {"total": 1200.5, "nothing": None},
}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{{ input.qty }}", 3),
        ("{{ data.total }}", 1200.5),
        ("{{ input.lines }}", [{"a": 1}]),
        ("{{ data.nothing }}", None),
        ("{{ data.total > 1000 }}", True),
        ("{{ {'n': input.qty} }}", {"n": 3}),
        ("{{ range(3) }}", [0, 1, 2]),
    ],
)
def test_a_lone_expression_keeps_its_json_type(template, expected):
    assert render(template, CONTEXT) == expected


def test_text_from_the_input_stays_text_whatever_it_looks_like():
    assert render("{{ input.code }}", CONTEXT) == "00123"
    assert render("{{ input.flag }}", CONTEXT) == "True"
    assert render({"ref": "{{ input.code }}"}, CONTEXT) == {"ref": "00123"}


def test_a_template_with_text_around_expressions_is_text():
    assert render("x{{ input.qty }}", CONTEXT) == "x3"
    assert render("{{ input.qty }} ", CONTEXT) == "3 "
    assert render("{{ input.qty }}{{ input.qty }}", CONTEXT) == "33"


def test_strings_without_expressions_are_returned_unchanged():
    assert render({"currency": "EUR", "n": 5, "list": ["a"]}, CONTEXT) == {
        "currency": "EUR",
        "n": 5,
        "list": ["a"],
    }


def test_a_lone_undefined_name_is_an_error_not_an_undefined_value():
    with pytest.raises(ExpressionError, match="'missing' is undefined"):
        render("{{ missing }}", CONTEXT)


def test_a_missing_key_is_an_error_in_text_too():
    with pytest.raises(ExpressionError, match="has no attribute 'nope'"):
        render("total: {{ data.nope }}", CONTEXT)


def test_dictionary_keys_win_over_methods():
    assert render("{{ input.items }}", CONTEXT) == [1, 2]
    with pytest.raises(ExpressionError, match="has no attribute 'keys'"):
        render("{{ input.keys }}", CONTEXT)


def test_errors_name_the_place_and_the_expression():
    with pytest.raises(ExpressionError) as caught:
        render({"body": {"amount": "{{ data.totl }}"}}, CONTEXT, "call")
    assert str(caught.value).startswith('call.body.amount: "{{ data.totl }}": ')


def test_a_function_failing_on_a_wrong_type_is_an_expression_error():
    with pytest.raises(ExpressionError, match="from_json"):
        render("{{ input.qty | from_json }}", CONTEXT)


@pytest.mark.parametrize(
    "template, reason",
    [
        ("{{ range(1000000) | list }}", "range too large"),
        ("{{ 'a' * 10000000 }}", "repetition too large"),
        ("{{ [1] * 10000000 }}", "repetition too large"),
        ("{{ 9 ** 9999999 }}", "exponent too large"),
        ("{{ '%99999999d' % 1 }}", "format width too large"),
        ("{{ 'x' | center(99999999) }}", "width too large"),
        ("{{ range(10000) | join('x' * 90000) }}", "join: result too large"),
        ("{{ range(10000) | map('center', 99999) | list | length }}", "made too much data"),
        ("{{ ('a' * 90000) | replace('a', 'aa') | replace('a', 'aa') }}", "too large"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nested too deeply"),
    ],
)
def test_expressions_that_would_burn_cpu_or_memory_fail_quickly(template, reason):
    with pytest.raises(ExpressionError, match=reason):
        render(template, CONTEXT)


def test_an_expression_past_its_time_budget_stops_at_its_next_function(monkeypatch):
    monkeypatch.setattr(guards, "TIME_BUDGET_SECONDS", -1)
    with pytest.raises(ExpressionError, match="took longer than"):
        render("{{ input.items | map('string') | list }}", CONTEXT)


def test_statements_are_refused():
    with pytest.raises(ExpressionError, match="statements"):
        render("{% for i in range(3) %}x{% endfor %}", CONTEXT)


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(ExpressionError, match="unsafe"):
        render("{{ ''.__class__.__mro__ }}", CONTEXT)
    with pytest.raises(ExpressionError):
        render("{{ input.__class__ }}", CONTEXT)


def test_is_true_reads_a_lone_expression_truth():
    assert is_true("{{ data.total > 1000 }}", CONTEXT) is True
    assert is_true("{{ input.qty == 4 }}", CONTEXT) is False


def test_compile_errors_name_each_bad_place_and_pass_good_ones():
    definition = {
        "url": "{{ secrets.BASE }}/charges",
        "body": {"a": "{{ data.total | nosuch }}", "b": ["ok", "{{ (1 }}"]},
        "save": {"id": "{{ mystery(1) }}"},
    }
    errors = compile_errors(definition, "")
    assert errors == [
        'body.a: "{{ data.total | nosuch }}": unknown function "nosuch"',
        "body.b[1]: \"{{ (1 }}\": unexpected '}', expected ')'",
        'save.id: "{{ mystery(1) }}": unknown function "mystery"',
    ]
    assert compile_errors({"when": "{{ data.total > 1 and input.qty is number }}"}, "x") == []


# Guards that hold in combination: each operation alone is small, together they are not.

BIG = {"text": "x" * 90_000, "list": list(range(90_000))}
COMBINED = [
    ("{{ ((9 ** 999) ** 999) ** 12 }}", "number too large"),
    ("{{ (2 ** 999) * (2 ** 999) * (2 ** 999) ** 100 }}", "number too large"),
    ("{{ [range(10000) | list] * 1000 }}", "repetition too large"),
    ("{{ [[range(10000) | list] * 100] * 100 }}", "repetition too large"),
    ("{{ " + " ~ ".join(["input.text"] * 40) + " }}", "text too large"),
    ("x{{ input.text ~ input.text }}", "text too large"),
    ("{{ (input.list | string) ~ '' }}", "too large"),
    ("{{ [" + ", ".join(["input.list"] * 40) + "] }}", "list too large"),
    ("{{ [" + ", ".join(["input.list"] * 40) + "] | length }}", "list too large"),
    (
        "{{ input.list + input.list + input.list + input.list + input.list + input.list "
        "+ input.list + input.list + input.list + input.list + input.list + input.list }}",
        "too large",
    ),
    ("{{ '{:>999999999}'.format(1) }}", "width too large"),
    ("{{ '{:>{}}'.format(1, 999999999) }}", "width too large"),
    ("{{ '{:>{w}}'.format_map({'w': 999999999}) }}", "width too large"),
    ("{{ 'x'.ljust(999999999) }}", "argument too large"),
    ("{{ [[[[1]]]] | tojson(indent=100000) }}", "indent"),
]


@pytest.mark.parametrize("template, reason", COMBINED)
def test_guards_hold_for_combinations_of_small_operations(template, reason):
    with pytest.raises(ExpressionError, match=reason):
        render(template, {"input": BIG})


@pytest.mark.parametrize("template", [template for template, _ in COMBINED[:6]])
def test_another_thread_keeps_running_while_an_expression_is_evaluated(template):
    """The lease heartbeat is a thread: no single operation may hold the GIL for long."""
    ticks, stop = [time.monotonic()], threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        with pytest.raises(ExpressionError):
            render(template, {"input": BIG})
    finally:
        stop.set()
        ticker.join()
    ticks.append(time.monotonic())
    longest_gap = max(later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False))
    assert longest_gap < 0.5


def test_values_within_the_limits_still_work():
    assert render("{{ (2 ** 999) * (2 ** 999) == 4 ** 999 }}", {}) is True
    assert render("{{ ([range(100) | list] * 100) | length }}", {}) == 100
    assert len(render("{{ input.text ~ 'y' }}", {"input": BIG})) == 90_001
    assert render("{{ [input.list, input.list] | length }}", {"input": BIG}) == 2
    assert render("{{ '{:>5}'.format(1) }}", {}) == "    1"
