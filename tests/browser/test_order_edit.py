"""Issue 24: support corrects a failed order's payload on its page (checked as they type),
reprocesses it from its failed step, and the partner receives the corrected value."""

import json

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders.batch import run_batch
from orders.models import Order, StepLog
from orders.services import order_create
from tests.admin_fixtures import staff_in
from tests.localserver import Reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCHEMA = {
    "type": "object",
    "required": ["postcode"],
    "properties": {"postcode": {"type": "string", "pattern": "^[0-9]{5}$"}},
}


@pytest.fixture
def refused_parcel(server):
    def carrier(request):
        postcode = request.body["postcode"]
        if postcode != "10115":
            return Reply(422, {"error": f"unknown postcode {postcode}"})
        return Reply(201, {"tracking": "TRK-1"})

    server.route("POST", "/shipments", carrier)
    api_call_save(
        definition={
            "slug": "carrier.ship",
            "name": "Ship the parcel",
            "method": "POST",
            "url": server.url + "/shipments",
            "body": {"postcode": "{{ input.postcode }}"},
            "save": {"tracking": "{{ response.body.tracking }}"},
        }
    )
    blueprint_save(
        definition={
            "slug": "parcel",
            "name": "Parcel",
            "input_schema": SCHEMA,
            "steps": [{"id": "ship", "call": "carrier.ship"}],
        }
    )
    order, _ = order_create(order_id="P-77", workflow="parcel", payload={"postcode": "10116"})
    run_batch()
    order.refresh_from_db()
    assert order.status == Order.Status.FAILED
    return order


def set_payload(page, value: str) -> None:
    page.driver.execute_script(
        "document.querySelector('.sm-json-cm-payload').CodeMirror.setValue(arguments[0])", value
    )


def check_text(page) -> str:
    return page.find("#edit-check").text


def test_support_fixes_the_payload_sees_the_check_and_the_partner_gets_the_fix(
    page, server, refused_parcel
):
    page.log_in(staff_in("Support"))
    page.open(f"/admin/orders/order/{refused_parcel.pk}/change/")
    page.find("#order-edit > summary").click()
    wait = WebDriverWait(page.driver, 10)

    set_payload(page, json.dumps({"postcode": "1O115"}))  # an O for a 0
    wait.until(lambda _: "Not saved as it is" in check_text(page))
    assert "payload.postcode: '1O115' does not match" in check_text(page)
    assert "reason: say why the order is edited" in check_text(page)
    page.screenshot("24-1-edit-refused-while-typing")

    set_payload(page, json.dumps({"postcode": "10115"}, indent=2))
    page.find("#id_edit_reason").send_keys("the customer mistyped the postcode")
    wait.until(lambda _: "Saving now would change" in check_text(page))
    assert 'payload.postcode: "10116" → "10115"' in check_text(page)
    page.screenshot("24-1-edit-checked")
    page.find("#edit-save").click()
    wait.until(lambda _: "The order was edited" in page.find(".messagelist").text)
    page.screenshot("24-1-edited-order")

    page.find('.sm-order-actions button[value="reprocess_from_failed"]').click()
    page.find('.submit-row input[type="submit"], .submit-row button[type="submit"]').click()
    wait.until(lambda _: Order.objects.get(pk=refused_parcel.pk).status == Order.Status.PENDING)
    run_batch()

    order = Order.objects.get(pk=refused_parcel.pk)
    assert order.status == Order.Status.COMPLETED, order.error
    assert [r.body["postcode"] for r in server.requests_to("/shipments")] == ["10116", "10115"]
    entry = StepLog.objects.get(order=order, kind=StepLog.Kind.EDIT)
    assert entry.request["reason"] == "the customer mistyped the postcode"
    page.open(f"/admin/orders/order/{order.pk}/change/")
    assert "<strong>Edited</strong>" in page.driver.page_source  # in run 1, folded
    page.screenshot("24-1-reprocessed-after-edit")
