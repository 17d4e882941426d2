"""Validation that names steps, and the versions of a blueprint, in a real browser, as a
blueprint editor: errors and warnings, comparing versions, restoring one, the orders on
each version, and the question before a change strands failed orders."""

import json

import pytest
from selenium.webdriver.support.ui import Select, WebDriverWait

from apicalls.models import ApiCall
from apicalls.services import api_call_delete
from blueprints.models import Blueprint
from blueprints.services import blueprint_save, workflow_snapshot
from orders.models import Order
from tests.admin_fixtures import staff_in
from tests.blueprints import definitions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def set_steps(page, steps: list) -> None:
    """The steps typed into the editor (CodeMirror when it is there, else the textarea)."""
    page.driver.execute_script(
        "var box = document.querySelector('.sm-json-cm-steps');"
        "if (box && box.CodeMirror) { box.CodeMirror.setValue(arguments[0]); }"
        "else { document.querySelector('textarea[name=steps]').value = arguments[0]; }",
        json.dumps(steps, indent=2),
    )


def renamed_review(definition: dict) -> dict:
    """The example with its review step renamed "ops-review" and a longer charge retry."""
    definition["steps"][1]["choice"][0]["next"] = "ops-review"
    definition["steps"][4]["id"] = "ops-review"
    definition["steps"][2]["retry"]["max_attempts"] = 8
    return definition


def screenshot(page, name: str) -> None:
    """The page whole: room at its foot for the browser's own bars, which the shared
    helper's window leaves too little of on a short page."""
    page.driver.execute_script(
        "document.querySelector('#content')"
        ".insertAdjacentHTML('beforeend', '<div style=\"height: 150px\"></div>')"
    )
    page.screenshot(name)


def open_blueprint(page, blueprint) -> None:
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")


def test_errors_name_the_step_id_and_an_unset_secret_is_a_warning(page, blueprint, monkeypatch):
    monkeypatch.delenv("STATE_MANAGER_SECRET_MAIL_FROM", raising=False)
    open_blueprint(page, blueprint)
    steps = definitions.blueprint()["steps"]
    steps[0]["params"] = {"kind": "{{ inptu.kind }}"}
    steps[4]["call"] = "ops.tiket"
    steps[3]["parallel"][1]["params"]["from"] = "{{ secrets.MAIL_FROM }}"
    steps.append({"id": "audit", "call": "ops.ticket", "end": "completed"})
    set_steps(page, steps)
    page.find("input[name=_continue]").click()

    errors = [item.text for item in page.find_all(".field-steps .errorlist li")]
    expected = [
        'steps[6] (id "audit"): unreachable from the first step',
        'steps[4] (id "review").call: no API call "ops.tiket"',
        'steps[0] (id "validate").params.kind: "{{ inptu.kind }}": '
        'unknown name "inptu": did you mean "input"?',
    ]
    assert len(errors) == 3
    assert all(error.startswith(text) for error, text in zip(errors, expected, strict=True))
    warning = page.find("ul.messagelist li.warning").text
    assert 'secret "MAIL_FROM" is not set on this machine' in warning
    assert warning.startswith('steps[3] (id "fulfil").parallel[1] (id "mail").params.from')
    screenshot(page, "13-6-validation-step-ids")
    assert Blueprint.objects.get(pk=blueprint.pk).version == 1


def test_editor_compares_two_versions_side_by_side(page, blueprint):
    blueprint_save(definition=renamed_review(definitions.blueprint()))
    open_blueprint(page, blueprint)
    page.find("#compare-versions").click()

    Select(page.find("select[name=a]")).select_by_value("1")
    Select(page.find("select[name=b]")).select_by_value("2")
    page.find("#version-pick input[type=submit]").click()
    # The comparison page is already showing a diff: wait for the one asked for.
    WebDriverWait(page.driver, 10).until(
        lambda driver: (
            "a=1" in driver.current_url
            and "b=2" in driver.current_url
            and driver.execute_script("return document.readyState") == "complete"
        )
    )

    changed = page.find_all("#version-diff tr.sm-diff-changed")
    pairs = [
        (row.find_element("css selector", ".sm-diff-old").text.strip(),
         row.find_element("css selector", ".sm-diff-new").text.strip())
        for row in changed
    ]  # fmt: skip
    assert ('"next": "review"', '"next": "ops-review"') in pairs
    assert ('"max_attempts": 5,', '"max_attempts": 8,') in pairs
    assert "−3 lines" in page.find(".sm-diff-summary").text
    screenshot(page, "13-7-diff")


def test_editor_restores_a_version_as_a_new_one(page, blueprint):
    blueprint_save(definition=renamed_review(definitions.blueprint()))
    open_blueprint(page, blueprint)
    page.find("a.sm-restore-link").click()
    assert "Restore version 1" == page.find("#restore-submit").get_attribute("value")
    screenshot(page, "13-7-restore")
    page.find("#restore-submit").click()

    assert "Version 1 restored as version 3." in page.find("ul.messagelist li.success").text
    restored = Blueprint.objects.get(pk=blueprint.pk)
    assert restored.version == 3 and restored.as_definition() == definitions.blueprint()
    screenshot(page, "13-7-restored")


def test_a_version_that_no_longer_validates_is_not_restored(page, blueprint):
    definition = definitions.blueprint()
    definition["steps"][4]["call"] = "mail.send"
    blueprint_save(definition=definition)
    api_call_delete(api_call=ApiCall.objects.get(slug="ops.ticket"))
    open_blueprint(page, blueprint)
    page.find("a.sm-restore-link").click()
    page.find("#restore-submit").click()

    errors = [item.text for item in page.find_all("#restore-errors .errorlist li")]
    assert errors == ['steps[4] (id "review").call: no API call "ops.ticket"']
    screenshot(page, "13-7-restore-refused")
    assert Blueprint.objects.get(pk=blueprint.pk).version == 2


def test_each_version_shows_its_orders_by_status(page, blueprint, make_orders):
    make_orders(3, log=False)
    make_orders(5, status=Order.Status.COMPLETED, log=False)
    second = blueprint_save(definition=renamed_review(definitions.blueprint()))
    for number in (1, 2):
        Order.objects.create(
            order_id=f"NEW-{number}",
            workflow=second.slug,
            snapshot=workflow_snapshot(blueprint=second),
            payload={"sku": "TEE", "qty": 1, "email": "a@example.com"},
        )
    open_blueprint(page, blueprint)

    note = page.find("#versions-group .sm-versions-note").text
    assert "the API calls it uses" in note
    rows = {
        row.find_element("css selector", ".field-version_label").text: row.find_element(
            "css selector", ".field-orders"
        ).text
        for row in page.find_all("#versions-group tbody tr.form-row")
    }
    assert rows == {"2 CURRENT": "all 2 2 pending", "1": "all 8 5 completed 3 failed"}
    screenshot(page, "13-7-orders-by-version")

    page.find("#versions-group a.sm-pinned-failed").click()
    listed = [cell.text for cell in page.find_all("#result_list tbody th")]
    expected = Order.objects.filter(status=Order.Status.FAILED).values_list("order_id", flat=True)
    assert sorted(listed) == sorted(expected)


def test_renaming_a_step_failed_orders_are_parked_at_asks_before_saving(
    page, blueprint, make_orders
):
    make_orders(4, log=False)  # failed at "charge"
    open_blueprint(page, blueprint)
    steps = definitions.blueprint()["steps"]
    steps[1]["default"] = "pay"
    steps[2]["id"] = "pay"
    set_steps(page, steps)
    page.find("input[name=_continue]").click()

    error = page.find(".field-save_anyway .errorlist").text
    assert error.startswith('4 failed order(s) are parked at step "charge"')
    assert Blueprint.objects.get(pk=blueprint.pk).version == 1
    screenshot(page, "13-7-rename-warning")

    page.find("input[name=save_anyway]").click()
    page.find("input[name=_continue]").click()
    assert "was changed successfully" in page.find("ul.messagelist li.success").text
    assert Blueprint.objects.get(pk=blueprint.pk).version == 2
