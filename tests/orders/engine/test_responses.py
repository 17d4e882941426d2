"""Whatever an API answers is stored: text PostgreSQL refuses and nesting Python cannot walk."""

import json

import pytest

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


def raw_json(text: str) -> Reply:
    """A reply whose JSON text is sent as it is (json.dumps would not write lone escapes)."""
    return Reply(200, text.encode(), headers={"Content-Type": "application/json"})


def test_nul_and_lone_surrogates_in_a_response_are_stored_replaced(server):
    server.route("POST", "/a", raw_json('{"id": "x\\u0000y", "k\\ud800": "\\udfff", "n": 1}'))
    calls = [api_call("a", server.url + "/a", save={"id": "{{ response.body.id }}"})]

    order = process(make_order([{"id": "a", "call": "a"}], calls))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"id": "x\ufffdy"}
    (attempt,) = attempts(order)
    assert attempt.response["body"] == {"id": "x\ufffdy", "k\ufffd": "\ufffd", "n": 1}


def test_nul_in_a_text_response_is_stored_replaced(server):
    server.route("POST", "/a", Reply(200, "before\x00after"))
    calls = [api_call("a", server.url + "/a", save={"text": "{{ response.body }}"})]

    order = process(make_order([{"id": "a", "call": "a"}], calls))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"text": "before\ufffdafter"}


@pytest.mark.parametrize("levels", [100, 900, 5000])
def test_a_response_nested_too_deeply_is_kept_as_its_text(server, levels):
    deep = "[" * levels + "1" + "]" * levels
    server.route(
        "POST", "/a", raw_json(json.dumps({"items": "x"})[:-1] + ', "deep": ' + deep + "}")
    )
    calls = [api_call("a", server.url + "/a", save={"body": "{{ response.body }}"})]

    order = process(make_order([{"id": "a", "call": "a"}], calls))

    assert order.status == Order.Status.COMPLETED, order.error
    assert isinstance(order.data["body"], str) and order.data["body"].startswith('{"items"')
