"""A map step end to end through the API: the blueprint saved with one, an order posted to
the webhook and run by the engine against a local API, its log read back item by item,
the failed map step found by the failed-step filter and the dashboard, and reprocessed."""

import pytest

from orders.batch import run_batch
from orders.selectors import failed_orders_by_step
from tests.localserver import Reply
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)

LINES = [{"sku": "TEE", "qty": 1}, {"sku": "CAP", "qty": 2}]


@pytest.fixture
def lines_blueprint(superuser, server):
    call = {
        "slug": "stock.reserve",
        "name": "Reserve stock",
        "method": "POST",
        "url": server.url + "/reserve",
        "body": {"sku": "{{ params.sku }}", "qty": "{{ params.qty }}"},
    }
    assert superuser.post("/api/api-calls/", call, format="json").status_code == 201
    blueprint = {
        "slug": "lines",
        "name": "Reserve each line",
        "steps": [
            {
                "id": "reserve",
                "map": {
                    "items": "{{ input.lines }}",
                    "as": "line",
                    "max_concurrency": 2,
                    "call": "stock.reserve",
                    "params": {"sku": "{{ line.sku }}", "qty": "{{ line.qty }}"},
                    "save": {"reservation": "{{ response.body.id }}"},
                },
                "save": {"reservations": "{{ results | map(attribute='reservation') | list }}"},
            }
        ],
    }
    response = superuser.post("/api/blueprints/", blueprint, format="json")
    assert response.status_code == 201, response.json()
    return superuser


def post_order(client, order_id: str) -> None:
    body = {"order_id": order_id, "workflow": "lines", "payload": {"lines": LINES}}
    assert client.post("/api/orders/", body, format="json").status_code == 201


def test_the_orders_log_lists_each_items_attempts(lines_blueprint, server):
    server.route("POST", "/reserve", lambda r: Reply(201, {"id": f"r-{r.body['sku']}"}))
    post_order(lines_blueprint, "L-1")
    run_batch()

    order = lines_blueprint.get("/api/orders/L-1/").json()
    assert order["status"] == "completed"
    assert order["data"] == {"reservations": ["r-TEE", "r-CAP"]}
    attempts = sorted(
        (entry["step"], entry["outcome"]) for entry in order["log"] if entry["attempt"]
    )
    assert attempts == [("reserve[0]", "succeeded"), ("reserve[1]", "succeeded")]
    bodies = {entry["step"]: entry["request"]["body"] for entry in order["log"] if entry["attempt"]}
    assert bodies == {
        "reserve[0]": {"sku": "TEE", "qty": 1},
        "reserve[1]": {"sku": "CAP", "qty": 2},
    }


def test_a_failed_map_is_counted_at_its_step_and_reprocessed_item_by_item(lines_blueprint, server):
    server.route(
        "POST",
        "/reserve",
        lambda r: Reply(500) if r.body["sku"] == "CAP" else Reply(201, {"id": "r-TEE"}),
    )
    post_order(lines_blueprint, "L-2")
    run_batch()

    order = lines_blueprint.get("/api/orders/L-2/").json()
    assert order["status"] == "failed"
    assert order["error"] == 'step "reserve": 1 of 2 items failed (0 tolerated): [1] HTTP 500'
    listed = lines_blueprint.get("/api/orders/", {"failed_step": "reserve"}).json()["results"]
    assert [row["order_id"] for row in listed] == ["L-2"]
    assert failed_orders_by_step() == [
        {
            "workflow": "lines",
            "step": "reserve",
            "count": 1,
            "reason": "1 of 2 items failed (0 tolerated): [1] HTTP 500",
        }
    ]

    server.route("POST", "/reserve", lambda r: Reply(201, {"id": "r-CAP"}))
    sent = len(server.requests_to("/reserve"))
    response = lines_blueprint.post("/api/orders/L-2/reprocess/", {"from": "failed"}, format="json")
    assert response.status_code == 202
    run_batch()

    order = lines_blueprint.get("/api/orders/L-2/").json()
    assert order["status"] == "completed"
    assert order["data"] == {"reservations": ["r-TEE", "r-CAP"]}
    assert [r.body["sku"] for r in server.requests_to("/reserve")[sent:]] == ["CAP"]


def test_the_impact_preview_answers_each_item_from_its_recorded_response(lines_blueprint, server):
    server.route("POST", "/reserve", lambda r: Reply(201, {"id": f"r-{r.body['sku']}"}))
    post_order(lines_blueprint, "L-3")
    run_batch()

    body = {"version": "latest", "orders": {}, "limit": 10}
    response = lines_blueprint.post("/api/blueprints/lines/impact/", body, format="json")

    assert response.status_code == 200, response.json()
    answer = response.json()
    assert (answer["total"], answer["same"], answer["unanswered"]) == (1, 1, 0), answer
