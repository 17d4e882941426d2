"""The order page of an order with a map step: the map drawn as a stacked node with its
inner call, and each item's attempts grouped under the map step in the step log."""

import pytest
from django.urls import reverse

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

LINES = [{"sku": "TEE"}, {"sku": "CAP"}, {"sku": "MUG"}]


def map_order(server) -> Order:
    answers = {"TEE": [Reply(201, {"id": "r-1"})], "CAP": [Reply(503), Reply(201, {"id": "r-2"})]}

    def reserve(request):
        queue = answers.get(request.body["sku"]) or [Reply(409, {"error": "out of stock"})]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    server.route("POST", "/reserve", reserve)
    calls = [api_call("stock.reserve", server.url + "/reserve", body={"sku": "{{ params.sku }}"})]
    step = {
        "id": "reserve",
        "map": {
            "items": "{{ input.lines }}",
            "call": "stock.reserve",
            "params": {"sku": "{{ item.sku }}"},
            "retry": {"max_attempts": 2, "backoff_seconds": 0},
            "tolerated_failures": 1,
            "save": {"id": "{{ response.body.id }}"},
        },
        "save": {"reservations": "{{ results }}"},
    }
    order = process(
        make_order([step, {"id": "done", "end": "completed"}], calls, payload={"lines": LINES})
    )
    assert order.status == Order.Status.COMPLETED, order.error
    return order


def test_each_items_attempts_are_grouped_under_the_map_step(server, admin_client_for, support):
    order = map_order(server)
    page = admin_client_for(support).get(reverse("admin:orders_order_change", args=[order.pk]))
    html = page.content.decode()

    (visit,) = [
        item for item in page.context["timeline_runs"][0]["items"] if item.step == "reserve"
    ]
    assert visit.outcome == "succeeded"  # one item failed, tolerated
    groups = [(g["step"], g["outcome"], g["attempts"]) for g in visit.item_groups]
    assert groups == [
        ("reserve[0]", "succeeded", 1),
        ("reserve[1]", "succeeded", 2),
        ("reserve[2]", "failed", 1),
    ]
    assert html.count('class="sm-visit sm-visit-succeeded" data-step="reserve"') == 1
    assert 'data-step="reserve[1]"' in html and "2 attempts" in html
    assert "3 items: 2 succeeded, 1 failed (tolerated)" in html


def test_the_diagram_draws_the_map_as_a_stack_with_its_inner_call(
    server, admin_client_for, support
):
    order = map_order(server)
    page = admin_client_for(support).get(reverse("admin:orders_order_change", args=[order.pk]))
    svg = page.context["diagram"]

    assert svg.count("sm-stack") == 2  # two cards behind the map's box
    assert "for each of input.lines · 1 may fail" in svg
    assert "call stock.reserve · item, index" in svg
    assert 'class="sm-box map taken"' in svg
