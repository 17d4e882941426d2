"""Editing definitions in a real browser: the highlighting JSON editor, errors at their line,
the diagram redrawn while typing, a new blueprint's example, read-only definitions."""

import json

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from apicalls.models import ApiCall
from blueprints.models import Blueprint
from tests.admin_fixtures import staff_in
from tests.blueprints import definitions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STEPS_EDITOR = ".sm-json-cm-steps"


def editor_text(page, css: str = STEPS_EDITOR) -> str:
    return page.driver.execute_script(
        "return document.querySelector(arguments[0]).CodeMirror.getValue()", css
    )


def set_editor_text(page, text: str, css: str = STEPS_EDITOR) -> None:
    page.driver.execute_script(
        "document.querySelector(arguments[0]).CodeMirror.setValue(arguments[1])", css, text
    )


def type_at(page, line: int, text: str, css: str = STEPS_EDITOR) -> None:
    """Put the cursor at the start of `line` (0-based) and type `text` as a person would."""
    page.driver.execute_script(
        "var cm = document.querySelector(arguments[0]).CodeMirror;"
        "cm.focus(); cm.setCursor({line: arguments[1], ch: 0});",
        css,
        line,
    )
    ActionChains(page.driver).send_keys(text).perform()


def wait_for(page, condition, timeout: float = 10):
    return WebDriverWait(page.driver, timeout).until(lambda driver: condition())


def marked_lines(page, kind: str, css: str = STEPS_EDITOR) -> list[str]:
    """The text of the editor's lines marked with an error of `kind` (error or syntax)."""
    return page.driver.execute_script(
        "var cm = document.querySelector(arguments[0]).CodeMirror, css = arguments[1];"
        "var marked = [];"
        "cm.eachLine(function (line) {"
        "  if ((line.bgClass || '').indexOf(css) >= 0) marked.push(line.text); });"
        "return marked;",
        css,
        f"sm-json-line-{kind}",
    )


def test_editor_edits_json_highlighted_with_line_numbers(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")

    assert not page.find("textarea[name=steps]").is_displayed()
    for css in (STEPS_EDITOR, ".sm-json-cm-input_schema"):
        assert page.find(css).is_displayed()
    numbers = [n.text for n in page.find_all(f"{STEPS_EDITOR} .CodeMirror-linenumber") if n.text]
    assert numbers[:3] == ["1", "2", "3"]
    assert '"validate"' in [s.text for s in page.find_all(f"{STEPS_EDITOR} .cm-string")]
    assert "id" in page.find(f"{STEPS_EDITOR} .cm-property").text
    page.screenshot("13-6-editor")

    type_at(page, 2, '    "note": "checked first",\n')
    posted = page.find("textarea[name=steps]").get_attribute("value")
    assert json.loads(posted)[0]["note"] == "checked first"


def test_a_json_syntax_error_is_marked_at_its_line_while_typing(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")

    type_at(page, 3, '    "retry": {"max_attempts": 2}\n')  # no comma after it

    wait_for(page, lambda: page.find_all(f"{STEPS_EDITOR} .sm-json-note-syntax"))
    assert page.find(f"{STEPS_EDITOR} .sm-json-note-syntax").text.startswith("JSON syntax:")
    assert page.find(f"{STEPS_EDITOR} + .sm-json-status").text.endswith("(line 5)")
    assert marked_lines(page, "syntax") == ['    "call": "shop.quote",']
    page.screenshot("13-6-syntax-error")

    type_at(page, 3, "  ")
    page.driver.execute_script(
        "var cm = document.querySelector(arguments[0]).CodeMirror;"
        "cm.replaceRange(',', {line: 3, ch: cm.getLine(3).length});",
        STEPS_EDITOR,
    )
    wait_for(page, lambda: not marked_lines(page, "syntax"))
    assert not page.find_all(f"{STEPS_EDITOR} .sm-json-note-syntax")
    assert not page.find(f"{STEPS_EDITOR} + .sm-json-status").is_displayed()


def test_a_validation_error_from_the_server_is_marked_at_its_line(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")
    steps = definitions.blueprint()["steps"]
    steps[2]["on_failed"] = "refnd"
    set_editor_text(page, json.dumps(steps, indent=2))
    page.find("input[name=_continue]").click()

    error = page.find(".field-steps .errorlist li")
    assert '.on_failed: no step "refnd"' in error.text
    note = page.find(f"{STEPS_EDITOR} .sm-json-note-error")
    assert note.text == error.text.rsplit(" line ", 1)[0]
    line = int(error.find_element("css selector", "a.sm-json-line-link").text.split()[-1])
    assert editor_text(page).splitlines()[line - 1].strip().rstrip(",") == '"on_failed": "refnd"'
    assert [line.strip().rstrip(",") for line in marked_lines(page, "error")] == [
        '"on_failed": "refnd"'
    ]
    dot = page.find(f"{STEPS_EDITOR} .sm-json-dot-error")
    assert 'no step "refnd"' in dot.get_attribute("title")
    page.screenshot("13-6-error-at-line")


def test_api_call_errors_are_marked_in_its_definition_and_try_it_edits_json(
    page, blueprint, monkeypatch
):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_URL", "https://pay.example.test")
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", "tok-very-secret")
    api_call = ApiCall.objects.get(slug="payments.charge")
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/apicalls/apicall/{api_call.pk}/change/")
    definition = json.loads(editor_text(page, ".sm-json-cm-definition"))
    definition["retry"]["max_attempts"] = "five"
    set_editor_text(page, json.dumps(definition, indent=2), ".sm-json-cm-definition")
    page.find("input[name=_continue]").click()

    assert "retry.max_attempts" in page.find(".field-definition .errorlist li").text
    marked = marked_lines(page, "error", ".sm-json-cm-definition")
    assert [line.strip().rstrip(",") for line in marked] == ['"max_attempts": "five"']
    page.screenshot("13-6-api-call-error")

    page.open(f"/admin/apicalls/apicall/{api_call.pk}/try/")
    for field in ("input", "params", "data"):
        assert page.find(f".sm-json-cm-{field}").is_displayed()
    set_editor_text(page, '{"total": 42}', ".sm-json-cm-data")
    page.find("input[type=submit]").click()
    assert '"amount": 42' in page.find("#try-preview").text
    assert json.loads(editor_text(page, ".sm-json-cm-data")) == {"total": 42}
    page.screenshot("13-6-try-it")


def diagram_svg(page) -> str:
    return page.find(".field-diagram .sm-diagram-box").get_attribute("innerHTML")


def test_the_diagram_is_redrawn_while_a_step_is_typed(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")
    before = diagram_svg(page)
    assert ">review<" in before and ">notify_team<" not in before

    type_at(page, 1, '  {"id": "notify_team", "call": "mail.send", "on_failed": "reject"},\n')

    wait_for(page, lambda: ">notify_team<" in diagram_svg(page))
    after = diagram_svg(page)
    assert after != before
    assert 'data-edge="notify_team-&gt;validate"' in after
    assert 'data-edge="notify_team-&gt;reject"' in after
    page.screenshot("13-6-live-diagram")

    type_at(page, 1, "{")  # half-typed: the last diagram stays, with a note
    wait_for(page, lambda: page.find(".sm-diagram-note").text)
    assert page.find(".sm-diagram-note").text.startswith("Diagram not redrawn: not valid JSON")
    assert ">notify_team<" in diagram_svg(page)
    assert Blueprint.objects.get(pk=blueprint.pk).version == blueprint.version


def test_a_new_blueprint_starts_from_a_working_example(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open("/admin/blueprints/blueprint/add/")

    steps = json.loads(editor_text(page))
    assert [step["id"] for step in steps] == ["first", "second", "done", "reject"]
    assert json.loads(editor_text(page, ".sm-json-cm-input_schema"))["type"] == "object"
    wait_for(page, lambda: ">second<" in diagram_svg(page))
    page.find("input[name=slug]").send_keys("welcome-mail")
    page.find("input[name=name]").send_keys("Welcome mail")
    page.screenshot("13-6-new-blueprint")

    page.find("input[name=_continue]").click()
    assert "was added successfully" in page.find("ul.messagelist li").text
    assert Blueprint.objects.get(slug="welcome-mail").steps == steps


def test_a_read_only_user_sees_definitions_indented_and_highlighted(page, blueprint):
    page.log_in(staff_in("Support"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")

    assert not page.find_all("textarea.sm-json-editor")
    view = page.find(".field-steps .sm-json-cm-view")
    lines = [line.text for line in view.find_elements("css selector", ".CodeMirror-line")]
    assert lines[:3] == ["[", "  {", '    "id": "validate",']
    assert view.find_elements("css selector", ".CodeMirror-linenumber")
    assert view.find_elements("css selector", ".cm-string")
    assert page.find(".field-diagram svg").is_displayed()
    page.screenshot("13-9-read-only")

    api_call = ApiCall.objects.get(slug="payments.charge")
    page.open(f"/admin/apicalls/apicall/{api_call.pk}/change/")
    view = page.find(".field-definition .sm-json-cm-view")
    assert '"method": "POST",' in view.text
    page.screenshot("13-9-read-only-api-call")
