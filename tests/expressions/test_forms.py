"""The `form` function (an urlencoded body read into an object, in bracket notation) and
`encode_form`, the writer of bracket notation, read back by it."""

from urllib.parse import urlencode

import pytest

from expressions import ExpressionError, render
from expressions.forms import MAX_PAIRS, encode_form
from expressions.guards import MAX_BODY_DEPTH, MAX_BODY_TEXT


def read(body):
    return render("{{ response.body | form }}", {"response": {"body": body}})


@pytest.mark.parametrize(
    ("body", "value"),
    [
        ("access_token=abc&token_type=bearer", {"access_token": "abc", "token_type": "bearer"}),
        ("metadata[order_id]=A-1", {"metadata": {"order_id": "A-1"}}),
        ("items[0][sku]=TEE&items[0][qty]=2", {"items": [{"sku": "TEE", "qty": "2"}]}),
        ("items[1][sku]=CAP&items[0][sku]=TEE", {"items": [{"sku": "TEE"}, {"sku": "CAP"}]}),
        ("items[5][sku]=A&items[9][sku]=B", {"items": [{"sku": "A"}, {"sku": "B"}]}),
        ("expand[]=x&expand[]=y", {"expand": ["x", "y"]}),
        ("scope=read&scope=write&scope=admin", {"scope": ["read", "write", "admin"]}),
        ("a[b][c][]=1&a[b][d]=2", {"a": {"b": {"c": ["1"], "d": "2"}}}),
        ("m[0][]=1&m[0][]=2&m[1][]=3", {"m": [["1", "2"], ["3"]]}),
        ("name=Zo%C3%AB+%C3%9C&note=a%2Bb%26c", {"name": "Zoë Ü", "note": "a+b&c"}),
        ("metadata%5Border_id%5D=A-1", {"metadata": {"order_id": "A-1"}}),
        ("flag&empty=", {"flag": "", "empty": ""}),
        ("a[b=1&[x]=2&c[d]e=3", {"a[b": "1", "[x]": "2", "c[d]e": "3"}),
        ("  state=xyz&code=42\n", {"state": "xyz", "code": "42"}),
        ("", {}),
    ],
    ids=[
        "oauth-answer",
        "nested-object",
        "list-of-objects",
        "positions-in-order",
        "sparse-positions",
        "list-of-scalars",
        "repeated-plain-key",
        "deep",
        "list-of-lists",
        "plus-and-percent",
        "encoded-brackets",
        "blank-values",
        "malformed-brackets-are-plain-keys",
        "surrounding-whitespace",
        "empty",
    ],
)
def test_form_reads_bracket_notation(body, value):
    assert read(body) == value


def test_an_oauth_answer_is_read_in_one_expression():
    body = "access_token=2YotnFZFEjr1zCsicMWpAA&token_type=example&expires_in=3600"
    template = "{{ (response.body | form).access_token }}"
    assert render(template, {"response": {"body": body}}) == "2YotnFZFEjr1zCsicMWpAA"


@pytest.mark.parametrize("body", ["a=1&a[b]=2", "a[b]=1&a[0]=2", "a[0]=1&a[b]=2", "a[b]=1&a=2"])
def test_keys_that_disagree_are_refused(body):
    with pytest.raises(ExpressionError, match="disagrees with an earlier key"):
        read(body)


def test_too_many_pairs_are_refused():
    with pytest.raises(ExpressionError, match=f"more than {MAX_PAIRS} pairs"):
        read("&".join(["a=1"] * (MAX_PAIRS + 1)))


def test_keys_nested_too_deeply_are_refused():
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_BODY_DEPTH} levels"):
        read("a" + "[b]" * MAX_BODY_DEPTH + "=1")


def test_a_text_too_large_is_refused_with_the_bound():
    with pytest.raises(ExpressionError, match=f"more than {MAX_BODY_TEXT}\\)"):
        read("a=" + "x" * MAX_BODY_TEXT)


@pytest.mark.parametrize("body", [42, ["a=1"], None])
def test_a_value_that_is_not_text_is_refused(body):
    with pytest.raises(ExpressionError, match="form: expects text, not"):
        read(body)


# The writer, and the round trip: form text has no types, so what is read back is the
# value with its scalars as text and its nulls (and empty lists and objects) left out.

ROUND_TRIPS = [
    ({"a": "x"}, {"a": "x"}),
    ({"metadata": {"order_id": "A-1", "n": 2}}, {"metadata": {"order_id": "A-1", "n": "2"}}),
    (
        {"items": [{"sku": "TEE", "qty": 1}, {"sku": "CAP", "qty": 3}]},
        {"items": [{"sku": "TEE", "qty": "1"}, {"sku": "CAP", "qty": "3"}]},
    ),
    ({"expand": ["x", "y", "z"]}, {"expand": ["x", "y", "z"]}),
    ({"expand": ["only"]}, {"expand": ["only"]}),
    ({"capture": True, "livemode": False}, {"capture": "true", "livemode": "false"}),
    ({"amount": 1999, "rate": 0.25, "big": -3}, {"amount": "1999", "rate": "0.25", "big": "-3"}),
    ({"coupon": None, "a": {"b": None, "c": "1"}}, {"a": {"c": "1"}}),
    ({"tags": ["a", None, "b"]}, {"tags": ["a", "b"]}),
    ({"items": [{"sku": "A"}, None, {"sku": "B"}]}, {"items": [{"sku": "A"}, {"sku": "B"}]}),
    ({"empty": [], "none": {}, "kept": "k"}, {"kept": "k"}),
    ({"grid": [[1, 2], [3]]}, {"grid": [["1", "2"], ["3"]]}),
    ({"mixed": ["s", {"k": "v"}]}, {"mixed": ["s", {"k": "v"}]}),
    ({"name": "Zoë Ü 東京", "emoji": "🙂"}, {"name": "Zoë Ü 東京", "emoji": "🙂"}),
    ({"first name": "a b", "q&a": "x=y&z", "p+c": "50%"},) * 2,
    ({"a": {"b": {"c": {"d": ["deep"]}}}}, {"a": {"b": {"c": {"d": ["deep"]}}}}),
    ({"blank": ""}, {"blank": ""}),
]


@pytest.mark.parametrize(("value", "read_back"), ROUND_TRIPS)
def test_what_encode_form_writes_form_reads_back(value, read_back):
    assert read(urlencode(encode_form(value))) == read_back


def test_encode_form_writes_stripe_bracket_notation_in_order():
    assert encode_form(
        {"customer": "cus_1", "metadata": {"order_id": "A-1"}, "items": [{"price": "p_1"}]}
        | {"expand": ["latest_invoice"], "off_session": True, "coupon": None}
    ) == [
        ("customer", "cus_1"),
        ("metadata[order_id]", "A-1"),
        ("items[0][price]", "p_1"),
        ("expand[]", "latest_invoice"),
        ("off_session", "true"),
    ]


@pytest.mark.parametrize("value", [{"a[b]": 1}, {"m": {"x]": 1}}, {"l": [{"[": 1}]}])
def test_encode_form_refuses_keys_holding_brackets(value):
    with pytest.raises(ValueError, match="holds a bracket"):
        encode_form(value)


@pytest.mark.parametrize("value", [["a"], "a=1", None])
def test_encode_form_refuses_what_is_not_an_object(value):
    with pytest.raises(ValueError, match="expects an object"):
        encode_form(value)


def test_encode_form_refuses_values_nested_too_deeply():
    value: dict = {}
    inner = value
    for _ in range(MAX_BODY_DEPTH + 1):
        inner["a"] = {}
        inner = inner["a"]
    inner["a"] = 1
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_BODY_DEPTH}"):
        encode_form(value)
