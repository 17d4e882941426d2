"""Reprocess from a named step: a new run at that step with the data the latest run had when
it reached it, through the API, the bulk API and the command, on the real engine."""

import pytest
from django.core.management import call_command

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders.batch import run_batch
from orders.models import Order, StepLog
from orders.services import order_create
from tests.localserver import Reply
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def three_steps(server):
    """quote saves the total, reserve saves a reservation, charge refuses until allowed."""
    server.allow_charge = False
    server.route("POST", "/quote", Reply(200, {"total": 42}))
    server.route(
        "POST", "/reserve", lambda r: Reply(200, {"id": f"R-{len(server.requests_to('/reserve'))}"})
    )
    server.route(
        "POST",
        "/charge",
        lambda r: Reply(200, {"ok": True}) if server.allow_charge else Reply(402, {"error": "no"}),
    )
    for name, save in [
        ("quote", {"total": "{{ response.body.total }}"}),
        ("reserve", {"reservation": "{{ response.body.id }}"}),
        ("charge", {}),
    ]:
        api_call_save(
            definition={
                "slug": name,
                "name": name,
                "method": "POST",
                "url": f"{server.url}/{name}",
                "body": {"data": "{{ data }}"},
                "save": save,
            }
        )
    blueprint_save(
        definition={
            "slug": "shop3",
            "name": "Shop",
            "steps": [
                {"id": "quote", "call": "quote"},
                {"id": "reserve", "call": "reserve"},
                {"id": "charge", "call": "charge"},
            ],
        }
    )
    return server


def failed_order(order_id: str) -> Order:
    order_create(order_id=order_id, workflow="shop3", payload={})
    run_batch()
    order = Order.objects.get(order_id=order_id)
    assert order.status == Order.Status.FAILED
    assert set(order.data) == {"total", "reservation"}
    return order


def reprocess(client, order_id, start_from):
    return client.post(f"/api/orders/{order_id}/reprocess/", {"from": start_from}, format="json")


def test_a_new_run_from_a_named_step_starts_with_the_data_the_run_had_there(support, three_steps):
    failed_order("A-1")
    three_steps.allow_charge = True

    response = reprocess(support, "A-1", "reserve")
    run_batch()

    assert response.status_code == 202, response.content
    order = Order.objects.get(order_id="A-1")
    assert order.status == Order.Status.COMPLETED, order.error
    assert order.run == 2
    # The second reserve saw the data as it stood when the first run reached reserve.
    first, second = three_steps.requests_to("/reserve")
    assert first.body == second.body == {"data": {"total": 42}}
    assert len(three_steps.requests_to("/quote")) == 1
    assert order.data == {"total": 42, "reservation": "R-2"}
    entry = StepLog.objects.get(order=order, kind=StepLog.Kind.REPROCESS)
    assert (entry.step, entry.request["from"]) == ("reserve", "reserve")


def test_a_step_the_latest_run_never_reached_or_the_version_lacks_is_a_409(support, three_steps):
    failed_order("A-1")
    assert reprocess(support, "A-1", "charge").status_code == 202  # run 2 starts at charge
    run_batch()

    never = reprocess(support, "A-1", "quote")
    missing = reprocess(support, "A-1", "refund")

    assert never.status_code == 409
    assert never.json()["detail"] == 'step "quote": the latest run of order "A-1" never reached it'
    assert missing.status_code == 409
    assert missing.json()["detail"] == 'step "refund" is not in the pinned version of this order'
    assert Order.objects.get(order_id="A-1").run == 2


def test_an_edit_made_since_the_run_reached_the_step_is_kept_on_top(support, three_steps):
    failed_order("A-1")
    support.patch(
        "/api/orders/A-1/",
        {"set": {"data.note": "gift"}, "unset": ["data.total"], "reason": "r"},
        format="json",
    )
    three_steps.allow_charge = True

    reprocess(support, "A-1", "charge")
    run_batch()
    again = reprocess(support, "A-1", "charge")  # completed: naming it is the explicit word
    run_batch()

    assert again.status_code == 202
    assert [r.body["data"] for r in three_steps.requests_to("/charge")] == [
        {"total": 42, "reservation": "R-1"},
        {"reservation": "R-1", "note": "gift"},
        {"reservation": "R-1", "note": "gift"},  # run 2 began at charge with the edit
    ]
    assert reprocess(support, "A-1", "reserve").status_code == 409  # run 3 never reached it


def test_an_edit_of_the_data_holds_for_a_reprocess_from_the_failed_step(support, three_steps):
    failed_order("A-1")
    three_steps.allow_charge = True

    support.patch(
        "/api/orders/A-1/", {"set": {"data.total": 40}, "reason": "discount"}, format="json"
    )
    reprocess(support, "A-1", "failed")
    run_batch()

    assert three_steps.requests_to("/charge")[-1].body == {
        "data": {"total": 40, "reservation": "R-1"}
    }


def test_the_bulk_command_skips_the_orders_whose_latest_run_never_reached_the_step(
    support, three_steps, capsys
):
    failed_order("A-1")
    failed_order("A-2")
    reprocess(support, "A-2", "charge")  # its run 2 starts at charge, and fails there again
    run_batch()

    call_command("reprocess_orders", "A-1", "A-2", "--from", "reserve")

    out = capsys.readouterr().out
    assert "Reprocessed 1 orders; skipped 1 (" in out
    assert 'or whose latest run never reached "reserve")' in out
    assert Order.objects.get(order_id="A-1").current_step == "reserve"
    assert Order.objects.get(order_id="A-2").status == Order.Status.FAILED
