"""Editing definitions in the admin: the JSON editor, the live diagram endpoint, the example
a new blueprint starts from, JSON indented for read-only users, the functions' docs."""

import html
import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from apicalls.models import ApiCall
from blueprints.models import Blueprint
from core.admin import EDITOR_CSS, EDITOR_JS
from tests.admin_fixtures import *  # noqa: F403 (the admin's users, not the conftest's API clients)
from tests.admin_fixtures import staff_in
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db

DIAGRAM = "admin:blueprints_blueprint_diagram"


def draw(client, steps) -> tuple[int, dict]:
    text = steps if isinstance(steps, str) else json.dumps(steps)
    response = client.post(reverse(DIAGRAM), {"steps": text})
    return response.status_code, response.json()


def test_the_diagram_of_unsaved_steps_is_drawn(admin_client_for, editor, blueprint):
    steps = definitions.blueprint()["steps"] + [{"id": "notify_team", "end": "completed"}]

    status, answer = draw(admin_client_for(editor), steps)

    assert status == 200
    assert answer["svg"].startswith("<svg")
    assert ">notify_team<" in answer["svg"]
    assert ">notify_team<" not in blueprint_page_diagram(admin_client_for(editor), blueprint)


def blueprint_page_diagram(client, blueprint) -> str:
    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk])).text
    return page[page.index('class="sm-diagram-box"') :]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not valid JSON yet (Expecting value on line 1)"),
        ('[\n  {"id": "a",\n  }\n]', "not valid JSON yet (Expecting property name"),
        ('{"id": "a"}', "the steps must be a JSON list"),
        ("null", "the steps must be a JSON list"),
        ("[" * 100_000 + "]" * 100_000, "the steps are nested too deeply"),
        (json.dumps([{"id": f"s{n}", "end": "completed"} for n in range(501)]), "too many steps"),
    ],
)
def test_steps_that_cannot_be_drawn_yet_get_a_short_reason(admin_client_for, editor, text, reason):
    status, answer = draw(admin_client_for(editor), text)

    assert status == 200  # a normal moment while typing, not a bad request to log
    assert answer["error"].startswith(reason)
    assert "svg" not in answer


@pytest.mark.parametrize(
    "steps",
    [
        [{"id": "a", "call": "x", "next": ["b"]}],
        [{"id": "a", "choice": 5, "default": {}}],
        [{"id": "a", "choice": [{"when": 1, "next": [1]}, 7], "default": []}],
        [{"id": "a", "parallel": 3, "on_failed": {"x": 1}}],
        [{"id": "a", "parallel": [{"id": ["x"], "call": None}, "b"]}],
        [{"id": "a", "end": '"><script>alert(1)</script>'}],
        [{"id": 5}, 7, None, {"call": "x"}],
        [],
    ],
)
def test_half_written_steps_still_draw(admin_client_for, editor, steps):
    status, answer = draw(admin_client_for(editor), steps)

    assert status == 200
    assert answer["svg"].startswith("<svg")
    assert "<script>" not in answer["svg"]


def test_readers_and_editors_may_draw_others_may_not(admin_client_for, support, superuser):
    steps = [{"id": "a", "end": "completed"}]
    assert draw(admin_client_for(support), steps)[0] == 200
    assert draw(admin_client_for(superuser), steps)[0] == 200

    no_role = admin_client_for(staff_in(None))
    assert no_role.post(reverse(DIAGRAM), {"steps": "[]"}).status_code == 403


def test_the_diagram_endpoint_wants_a_signed_in_post_with_its_csrf_token(editor):
    anonymous = Client()
    response = anonymous.post(reverse(DIAGRAM), {"steps": "[]"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]

    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    assert client.get(reverse(DIAGRAM)).status_code == 405
    assert client.post(reverse(DIAGRAM), {"steps": "[]"}).status_code == 403

    page = client.get(reverse("admin:blueprints_blueprint_add"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post(reverse(DIAGRAM), {"steps": "[]", "csrfmiddlewaretoken": token})
    assert answer.status_code == 200


def test_the_blueprint_page_tells_its_diagram_where_to_redraw(admin_client_for, editor, blueprint):
    client = admin_client_for(editor)
    for url in (
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        reverse("admin:blueprints_blueprint_add"),
    ):
        page = client.get(url).text
        assert f'data-diagram-url="{reverse(DIAGRAM)}"' in page
        assert "statemanager/blueprint-diagram.js" in page


def test_definition_pages_load_the_vendored_editor(admin_client_for, editor, blueprint):
    client = admin_client_for(editor)
    api_call = ApiCall.objects.get(slug="payments.charge")
    for url in (
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        reverse("admin:blueprints_blueprint_add"),
        reverse("admin:apicalls_apicall_change", args=[api_call.pk]),
        reverse("admin:apicalls_apicall_add"),
        reverse("admin:apicalls_apicall_try", args=[api_call.pk]),
    ):
        page = client.get(url).text
        assert "/static/statemanager/vendor/codemirror/lib/codemirror.js" in page, url
        assert "/static/statemanager/json-editor.js" in page, url
        assert 'class="sm-json-editor"' in page, url
        assert "//cdn" not in page


def test_the_vendored_editor_ships_with_its_licence():
    for path in (*EDITOR_JS, *EDITOR_CSS, "statemanager/vendor/codemirror/LICENSE"):
        assert finders.find(path), path


def initial_json(page, field: str):
    match = re.search(rf'<textarea name="{field}"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    return json.loads(html.unescape(match.group(1)))


def test_a_new_blueprint_starts_from_a_working_example(admin_client_for, editor, blueprint):
    client = admin_client_for(editor)
    page = client.get(reverse("admin:blueprints_blueprint_add")).text

    steps = initial_json(page, "steps")
    input_schema = initial_json(page, "input_schema")
    assert [step.get("call") for step in steps[:2]] == ["mail.send", "ops.ticket"]
    assert "add these API calls" not in page

    response = client.post(
        reverse("admin:blueprints_blueprint_add"),
        {
            "slug": "from-the-example",
            "name": "From the example",
            "description": "",
            "input_schema": json.dumps(input_schema),
            "steps": json.dumps(steps),
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Blueprint.objects.get(slug="from-the-example").steps == steps


def test_without_api_calls_the_example_names_placeholders_and_says_so(admin_client_for, editor):
    page = admin_client_for(editor).get(reverse("admin:blueprints_blueprint_add")).text

    steps = initial_json(page, "steps")
    assert [step.get("call") for step in steps[:2]] == ["shop.quote", "payments.charge"]
    assert "The example calls shop.quote and payments.charge: add these API calls" in page


def test_read_only_users_see_definitions_indented(admin_client_for, support, blueprint):
    client = admin_client_for(support)
    api_call = ApiCall.objects.get(slug="payments.charge")

    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk])).text
    assert "<textarea" not in page
    view = '<pre class="sm-json sm-json-view">'
    assert view + "[\n  {\n    &quot;id&quot;: &quot;validate&quot;" in page
    assert view + "{\n  &quot;type&quot;: &quot;object&quot;" in page
    assert "form-row field-steps field-diagram" in page
    assert "/static/statemanager/json-editor.js" in page

    page = client.get(reverse("admin:apicalls_apicall_change", args=[api_call.pk])).text
    shown = page[page.index(view) : page.index("</pre>", page.index(view))]
    assert "\n  &quot;method&quot;: &quot;POST&quot;,\n" in shown  # keys in any order: JSONB
    assert "<label>Definition:</label>" in page


def test_editors_get_the_editor_not_the_read_only_view(admin_client_for, editor, blueprint):
    page = admin_client_for(editor).get(
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk])
    )
    assert 'textarea name="steps"' in page.text
    assert "sm-json-view" not in page.text


def test_function_docs_show_code_spans_as_code(admin_client_for, editor):
    page = admin_client_for(editor).get(reverse("admin:blueprints_blueprint_functions")).text

    row = re.search(r'<tr id="function-add_days">.*?</tr>', page, re.DOTALL).group(0)
    assert "<code>days</code>" in row
    assert "<code>{{ now() | add_days(14) }}</code>" in row
    assert "`" not in row
    assert "``" not in re.search(r'<tr id="function-attr">.*?</tr>', page, re.DOTALL).group(0)
