"""POST /api/blueprints/{slug}/impact/: a blueprint change replayed over recorded orders,
each call answered as the order's latest run recorded it; nothing sent, nothing saved."""

import json

import pytest
from django.urls import reverse

from apicalls.services import api_call_save
from blueprints.models import Blueprint
from blueprints.services import blueprint_save
from orders.batch import run_batch
from orders.models import Order, StepLog
from orders.services import order_create
from tests.admin_fixtures import staff_in
from tests.localserver import Reply
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 200


def routed(threshold: int) -> dict:
    return {
        "slug": "routed",
        "name": "Routed",
        "steps": [
            {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
            {
                "id": "route",
                "choice": [{"when": f"{{{{ data.total > {threshold} }}}}", "next": "review"}],
                "default": "charge",
            },
            {"id": "charge", "call": "charge", "end": "completed"},
            {"id": "review", "call": "review", "end": "completed"},
        ],
    }


@pytest.fixture
def recorded(server):
    """200 orders run for real: totals of 10 to 2000, those over 1000 reviewed."""
    server.route("POST", "/quote", lambda r: Reply(200, {"total": r.body["qty"] * 10}))
    server.route("POST", "/charge", Reply(201, {"id": "ch"}))
    server.route("POST", "/review", Reply(201, {"id": "rv"}))
    for name in ("quote", "charge", "review"):
        api_call_save(
            definition={
                "slug": name,
                "name": name,
                "method": "POST",
                "url": f"{server.url}/{name}",
                "body": {"qty": "{{ input.qty }}"},
            }
        )
    blueprint_save(definition=routed(1000))
    for number in range(1, ORDERS + 1):
        order_create(order_id=f"R-{number}", workflow="routed", payload={"qty": number})
    while Order.objects.exclude(status="completed").exists():
        run_batch()
    return server


def test_a_lower_threshold_names_exactly_the_orders_whose_path_changes(editor, recorded):
    sent_before = len(recorded.received)
    logged_before = StepLog.objects.count()

    response = editor.post(
        "/api/blueprints/routed/impact/",
        {"version": routed(500), "limit": ORDERS},
        format="json",
    )

    assert response.status_code == 200, response.content
    result = response.json()
    changed = {row["order_id"] for row in result["orders"] if row["outcome"] != "same"}
    # Totals 510..1000 were charged; under the change they would go to review.
    assert changed == {f"R-{qty}" for qty in range(51, 101)}
    assert (result["total"], result["same"], result["unanswered"]) == (ORDERS, 150, 50)
    row = next(row for row in result["orders"] if row["order_id"] == "R-60")
    assert row["unanswered"] == ["review would call review, which has no recorded answer"]
    assert len(recorded.received) == sent_before  # nothing sent
    assert StepLog.objects.count() == logged_before  # nothing saved


def test_a_change_that_only_moves_answered_paths_is_different_with_the_difference(editor, recorded):
    definition = routed(1000)
    definition["steps"][0]["save"] = {"total": "{{ response.body.total * 2 }}"}

    result = editor.post(
        "/api/blueprints/routed/impact/",
        {"version": definition, "orders": {"payload.qty": ["3"]}, "limit": 10},
        format="json",
    ).json()

    (row,) = result["orders"]
    assert (row["order_id"], row["outcome"]) == ("R-3", "different")
    assert row["difference"] == ["data.total: 30 now, 60 with the change"]


def test_impact_is_for_editors_and_refuses_a_bad_definition(support, editor, recorded):
    assert support.post("/api/blueprints/routed/impact/", {}, format="json").status_code == 403
    bad = editor.post("/api/blueprints/routed/impact/", {"version": {"steps": "x"}}, format="json")
    assert bad.status_code == 400
    assert (
        editor.post("/api/blueprints/routed/impact/", {"version": 9}, format="json").status_code
        == 404
    )
    assert Blueprint.objects.get(slug="routed").version == 1


def test_the_blueprints_impact_page_replays_the_edited_definition(recorded, client):
    client.force_login(staff_in("Blueprint editors"))
    shop = Blueprint.objects.get(slug="routed")
    url = reverse("admin:blueprints_blueprint_impact", args=[shop.pk])
    assert (
        'id="impact-link"'
        in client.get(reverse("admin:blueprints_blueprint_change", args=[shop.pk])).content.decode()
    )

    page = client.post(url, {"definition": json.dumps(routed(500)), "limit": ORDERS})

    assert page.status_code == 200
    assert (page.context["result"]["same"], page.context["result"]["unanswered"]) == (150, 50)
    assert "review would call review, which has no recorded answer" in page.content.decode()
    broken = client.post(url, {"definition": json.dumps({"steps": []}), "limit": 10})
    assert broken.context["result"] is None
    assert "errorlist" in broken.content.decode()


def test_the_change_form_checks_the_impact_of_its_unsaved_steps(recorded, client):
    client.force_login(staff_in("Blueprint editors"))
    shop = Blueprint.objects.get(slug="routed")
    change = client.get(reverse("admin:blueprints_blueprint_change", args=[shop.pk]))
    assert 'id="impact-before-save"' in change.content.decode()
    form = {
        "slug": "routed",
        "name": "Routed",
        "steps": json.dumps(routed(1500)["steps"]),
        "input_schema": "",
    }

    page = client.post(reverse("admin:blueprints_blueprint_impact", args=[shop.pk]), form)

    # The newest 100 (totals 1010 to 2000) were all reviewed; under 1500, totals up to 1500
    # would go to charge, for which they recorded no answer.
    assert page.status_code == 200
    result = page.context["result"]
    assert (result["total"], result["same"], result["unanswered"]) == (100, 50, 50)
    assert Blueprint.objects.get(slug="routed").version == 1  # nothing saved
