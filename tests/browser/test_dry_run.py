"""Issue 13, item 8: a blueprint editor dry-runs the e-commerce blueprint in a real browser."""

import json

import pytest

from orders.models import Order, StepLog
from tests.admin_fixtures import staff_in
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRETS = {
    "SHOP_URL": "https://shop.example",
    "PAYMENTS_URL": "https://payments.example",
    "PAYMENTS_TOKEN": "tok-s3cret",
    "SHIPPING_URL": "https://shipping.example",
    "MAIL_URL": "https://mail.example",
    "OPS_URL": "https://ops.example",
}


def fill(page, field: str, value) -> None:
    """Set a JSON field, whether the page's editor script has made it a CodeMirror or not."""
    page.driver.execute_script(
        "var row = document.querySelector('.field-' + arguments[0]);"
        "var editor = row.querySelector('.CodeMirror');"
        "if (editor && editor.CodeMirror) { editor.CodeMirror.setValue(arguments[1]); }"
        "else { row.querySelector('textarea').value = arguments[1]; }",
        field,
        json.dumps(value, indent=2),
    )


def whole_page_screenshot(page, name: str) -> None:
    """The page to its end: the window must be taller than the page by the browser's own
    bars, which `page.screenshot` does not allow for."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.driver.execute_script("return document.documentElement.scrollHeight")
    page.driver.set_window_size(1400, height + 200)
    page.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    page.driver.set_window_size(1400, 1000)


def test_editor_dry_runs_a_declined_charge_down_the_failure_branch(page, blueprint, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"STATE_MANAGER_SECRET_{name}", value)
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")
    page.find("#dry-run-link").click()

    hint = page.find("#dry-run-call-steps").text
    assert "fulfil.ship" in hint and "payments.charge" in hint
    fill(page, "payload", {"sku": "TEE", "qty": 2, "email": "ann@example.com"})
    fill(
        page,
        "responses",
        {
            "validate": {"status": 200, "body": {"total": 50}},
            "charge": [
                {"status": 503, "body": {"error": "try again"}},
                {"status": 402, "body": {"error": "card declined"}},
            ],
        },
    )
    page.find("#dry-run-submit").click()

    end = page.find("#dry-run-end")
    assert "Would end" in end.text and "FAILED" in end.text.upper()
    assert "order could not be charged" in end.text
    visited = [row.get_attribute("data-step") for row in page.find_all("#dry-run-steps tbody")]
    assert visited == ["validate", "route", "charge", "reject"]
    charge = page.find("#dry-run-step-3")
    assert charge.get_attribute("data-outcome") == "failed"
    assert "HTTP 402" in charge.text and "→ reject" in charge.text
    charge.find_element("css selector", "details.sm-dry-request summary").click()
    request = charge.find_element("css selector", "details.sm-dry-request").text
    assert '"Authorization": "***"' in request and "tok-s3cret" not in page.driver.page_source
    whole_page_screenshot(page, "13-8-dry-run")
    assert not Order.objects.exists() and not StepLog.objects.exists()


def test_a_payload_the_input_schema_refuses_is_named_at_its_field(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/dry-run/")
    fill(page, "payload", {"sku": "TEE", "qty": 0, "email": "ann@example.com"})
    page.find("#dry-run-submit").click()

    errors = page.find(".field-payload .errorlist").text
    assert "payload.qty: 0 is less than the minimum of 1" in errors
    assert not page.find_all("#dry-run-end")
