"""Hostile input at every door gets a 4xx that names its place, never a 5xx.

Text PostgreSQL cannot store (NUL, lone surrogates), JSON nested too deeply, impossible
UTC offsets and order ids no URL can reach, through the API, the admin and the import
command. SQLite could store NUL; it is refused the same, so both databases behave alike.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apicalls.models import ApiCall
from apicalls.services import api_call_save
from blueprints.models import Blueprint
from orders.models import Callback, Order, StepLog
from tests.blueprints import definitions
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

DEPTH = 64  # STATE_MANAGER_MAX_JSON_DEPTH's default
PAST_THE_PARSER = 100_000  # levels of `[`: far past Python's recursion limit
NUL = "\x00"
SURROGATE = "\ud800"
ORDER = {"order_id": "A-1", "workflow": "shop", "payload": {"sku": "mug", "qty": 1}}
BAD_TEXT = [
    pytest.param(NUL, "contains a NUL character", id="nul"),
    pytest.param(SURROGATE, "contains a lone surrogate (\\ud800-\\udfff)", id="surrogate"),
]
API_CALL = {"slug": "shop.quote", "name": "Quote", "method": "GET", "url": "http://x.test/q"}
BLUEPRINT = {
    "slug": "flow",
    "name": "Flow",
    "steps": [
        {"id": "quote", "call": "shop.quote", "save": {"total": "{{ response.body.total }}"}},
        {"id": "done", "end": "completed"},
    ],
}


def nested(levels: int):
    """A JSON value of `levels` lists, one inside the other."""
    value = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def post_json(client, url: str, body):
    """Post `body` as JSON text: json.dumps escapes a lone surrogate as `\\ud800`, as a
    client's JSON would carry it."""
    return client.post(url, json.dumps(body), content_type="application/json")


def post_raw(client, url: str, text: str):
    return client.post(url, text, content_type="application/json")


def errors(response) -> list[str]:
    assert response.status_code == 400, response.content
    return response.json()["errors"]


@pytest.fixture
def quote_call(db):
    return api_call_save(definition=API_CALL)


# The webhook.


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_webhook_refuses_unstorable_text_in_a_payload_value(integration, shop, text, reason):
    body = {**ORDER, "payload": {"sku": "mug", "qty": 1, "customer": {"name": f"a{text}"}}}

    response = post_json(integration, "/api/orders/", body)

    assert errors(response) == [f"payload.customer.name: {reason}"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_webhook_refuses_unstorable_text_in_a_payload_key(integration, shop, text, reason):
    body = {**ORDER, "payload": {"sku": "mug", "qty": 1, "lines": [{f"k{text}": 1}]}}

    response = post_json(integration, "/api/orders/", body)

    shown = json.dumps(f"k{text}")
    assert errors(response) == [f"payload.lines[0]: the key {shown} {reason}"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("field", ["order_id", "workflow"])
@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_webhook_refuses_unstorable_text_in_order_id_and_workflow(
    integration, shop, field, text, reason
):
    response = post_json(integration, "/api/orders/", {**ORDER, field: f"A{text}"})

    assert errors(response) == [f"{field}: {reason}"]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "order_id,reason",
    [
        ("A/1", 'must not contain "/"'),
        ("A\x01", "must not contain control characters"),
        ("A\n1", "must not contain control characters"),
        ("A\x7f", "must not contain control characters"),
        ("A\x85B", "must not contain control characters"),
    ],
)
def test_webhook_refuses_an_order_id_no_url_can_reach(integration, shop, order_id, reason):
    response = post_json(integration, "/api/orders/", {**ORDER, "order_id": order_id})

    assert errors(response) == [f"order_id: {reason}"]
    assert not Order.objects.exists()


def test_webhook_accepts_an_order_id_with_dots_spaces_and_unicode(superuser, shop):
    response = post_json(superuser, "/api/orders/", {**ORDER, "order_id": "Kö 1.2:3"})

    assert response.status_code == 201
    assert superuser.get("/api/orders/Kö 1.2:3/").status_code == 200


def test_webhook_accepts_a_payload_nested_to_the_limit(integration, shop):
    payload = {"sku": "mug", "qty": 1, "deep": nested(DEPTH - 1)}

    response = post_json(integration, "/api/orders/", {**ORDER, "payload": payload})

    assert response.status_code == 201
    assert Order.objects.get().payload == payload


def test_webhook_refuses_a_payload_nested_deeper_than_the_limit(integration, shop):
    payload = {"sku": "mug", "qty": 1, "deep": nested(DEPTH)}

    response = post_json(integration, "/api/orders/", {**ORDER, "payload": payload})

    assert errors(response) == [f"payload: nested deeper than {DEPTH} levels"]
    assert not Order.objects.exists()


def test_the_depth_limit_is_a_setting(integration, shop, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, max_json_depth=3)
    payload = {"sku": "mug", "qty": 1, "deep": nested(3)}

    response = post_json(integration, "/api/orders/", {**ORDER, "payload": payload})

    assert errors(response) == ["payload: nested deeper than 3 levels"]


@pytest.mark.parametrize("url", ["/api/orders/", "/api/callbacks/tok-1/", "/api/api-calls/"])
def test_body_nested_past_the_parsers_recursion_is_a_400(superuser, waiting, url):
    text = "[" * PAST_THE_PARSER + "]" * PAST_THE_PARSER

    response = post_raw(superuser, url, text)

    assert errors(response) == ["body: JSON parse error - nested too deeply"]


# Callbacks.


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_callback_refuses_unstorable_text_in_its_data(anonymous, waiting, text, reason):
    body = {"outcome": "success", "data": {"ref": f"r{text}", f"k{text}": 1}}

    response = post_json(anonymous, "/api/callbacks/tok-1/", body)

    shown = json.dumps(f"k{text}")
    assert errors(response) == [f"data.ref: {reason}", f"data: the key {shown} {reason}"]
    assert Callback.objects.get(token="tok-1").status == "waiting"


def test_callback_refuses_data_nested_deeper_than_the_limit(anonymous, waiting):
    body = {"outcome": "success", "data": {"deep": nested(DEPTH)}}

    response = post_json(anonymous, "/api/callbacks/tok-1/", body)

    assert errors(response) == [f"data: nested deeper than {DEPTH} levels"]
    assert Callback.objects.get(token="tok-1").status == "waiting"


@pytest.mark.parametrize("token", ["%00", "tok-1%00", "%00tok-1"])
def test_callback_token_holding_nul_is_404(anonymous, waiting, token):
    response = anonymous.post(f"/api/callbacks/{token}/", {"outcome": "success"}, format="json")

    assert response.status_code == 404
    assert Callback.objects.get(token="tok-1").status == "waiting"


# Order ids and filters in URLs.


@pytest.mark.parametrize("method,path", [("get", ""), ("post", "reprocess/"), ("post", "cancel/")])
def test_order_id_holding_nul_in_the_url_is_404(superuser, shop, method, path):
    shop_order("A-1", "failed")

    response = getattr(superuser, method)(f"/api/orders/A-1%00/{path}")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("name", ["search", "workflow", "status", "ordering", "payload.sku"])
def test_list_filter_holding_nul_is_400_naming_the_parameter(support, shop, name):
    response = support.get("/api/orders/", {name: "a\x00"})

    assert errors(response) == [f"{name}: contains a NUL character"]


def test_query_parameter_name_holding_nul_is_400(support, shop):
    response = support.get("/api/orders/?a%00b=1")

    assert errors(response) == ['query: the parameter "a\\u0000b" contains a NUL character']


@pytest.mark.parametrize("name", ["created_after", "created_before"])
@pytest.mark.parametrize("offset", ["+20:00", "-15:00", "+14:01"])
def test_list_refuses_a_time_with_an_impossible_utc_offset(support, shop, name, offset):
    response = support.get("/api/orders/", {name: f"2026-01-01T00:00:00{offset}"})

    assert errors(response) == [f"{name}: the UTC offset must be between -14:00 and +14:00"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_list_refuses_a_time_out_of_range_in_utc(support, shop, value):
    response = support.get("/api/orders/", {"created_after": value})

    assert errors(response) == ["created_after: out of range"]


def test_list_reads_a_real_utc_offset(support, shop):
    order = shop_order("A-1")
    created = order.created_at.astimezone(timezone.get_fixed_timezone(14 * 60))

    before = support.get("/api/orders/", {"created_before": created.isoformat()})
    at = support.get("/api/orders/", {"created_after": created.isoformat()})

    assert before.json()["count"] == 0
    assert at.json()["count"] == 1


# Reprocess.


@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_bulk_reprocess_refuses_a_time_with_an_impossible_utc_offset(support, shop, name):
    shop_order("A-1", "failed")
    body = {name: "2026-01-01T00:00:00+20:00", "from": "start"}

    response = post_json(support, "/api/orders/reprocess/", body)

    assert errors(response) == [f"{name}: the UTC offset must be between -14:00 and +14:00"]
    assert Order.objects.get().status == "failed"


@pytest.mark.parametrize(
    "order_id,reason",
    [
        ("A\x00", "contains a NUL character"),
        ("A\ud800", "contains a lone surrogate (\\ud800-\\udfff)"),
        ("A/1", 'must not contain "/"'),
        ("A\x1b", "must not contain control characters"),
    ],
)
def test_bulk_reprocess_refuses_order_ids_no_order_can_have(support, shop, order_id, reason):
    response = post_json(support, "/api/orders/reprocess/", {"order_ids": ["A-1", order_id]})

    assert errors(response) == [f"order_ids[1]: {reason}"]


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_bulk_reprocess_refuses_unstorable_text_in_a_filter(support, shop, text, reason):
    response = post_json(support, "/api/orders/reprocess/", {"workflow": f"s{text}"})

    assert errors(response) == [f"workflow: {reason}"]


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_reprocess_refuses_unstorable_text_in_its_options(support, shop, text, reason):
    shop_order("A-1", "failed")

    response = post_json(support, "/api/orders/A-1/reprocess/", {"from": f"start{text}"})

    assert errors(response) == [f"from: {reason}"]
    assert Order.objects.get().status == "failed"


# API calls and blueprints through the API.


@pytest.mark.parametrize(
    "field,value,place",
    [
        ("name", "Quote@@", "name"),
        ("url", "http://x.test/@@", "url"),
        ("headers", {"X-Ref": "@@"}, "headers.X-Ref"),
        ("body", {"lines": [{"sku": "@@"}]}, "body.lines[0].sku"),
        ("save", {"total": "{{ response.body.total }}@@"}, "save.total"),
    ],
)
@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_api_call_api_refuses_unstorable_text_naming_its_place(
    superuser, db, field, value, place, text, reason
):
    """`@@` in the value stands for the text."""
    body = {**API_CALL, "method": "POST", field: with_text(value, text)}

    response = post_json(superuser, "/api/api-calls/", body)

    assert errors(response) == [f"{place}: {reason}"]
    assert not ApiCall.objects.exists()


def with_text(value, text: str):
    return json.loads(json.dumps(value).replace("@@", json.dumps(text)[1:-1]))


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_api_call_api_refuses_unstorable_text_in_a_header_name(superuser, db, text, reason):
    body = {**API_CALL, "headers": {f"X-{text}": "1"}}

    response = post_json(superuser, "/api/api-calls/", body)

    assert errors(response) == [f"headers: the key {json.dumps(f'X-{text}')} {reason}"]


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_api_call_api_refuses_an_unstorable_slug_without_looking_it_up(superuser, db, text, reason):
    response = post_json(superuser, "/api/api-calls/", {**API_CALL, "slug": f"s{text}"})

    assert errors(response) == [f"slug: {reason}"]


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_api_call_api_refuses_unstorable_text_on_change(superuser, quote_call, text, reason):
    response = superuser.patch(
        "/api/api-calls/shop.quote/",
        json.dumps({"name": f"Q{text}"}),
        content_type="application/json",
    )

    assert errors(response) == [f"name: {reason}"]
    assert ApiCall.objects.get().name == "Quote"


def test_api_call_api_refuses_a_body_nested_deeper_than_the_limit(superuser, db):
    body = {**API_CALL, "method": "POST", "body": {"deep": nested(DEPTH)}}

    response = post_json(superuser, "/api/api-calls/", body)

    assert errors(response) == [f"body: nested deeper than {DEPTH} levels"]


def test_api_call_api_accepts_a_body_nested_to_the_limit(superuser, db):
    body = {**API_CALL, "method": "POST", "body": {"deep": nested(DEPTH - 1)}}

    response = post_json(superuser, "/api/api-calls/", body)

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_blueprint_api_names_the_step_by_index_and_id(superuser, quote_call, text, reason):
    blueprint = json.loads(json.dumps(BLUEPRINT))
    blueprint["steps"][0]["save"] = {"total": f"x{text}"}

    response = post_json(superuser, "/api/blueprints/", blueprint)

    assert errors(response) == [f'steps[0] (id "quote").save.total: {reason}']
    assert not Blueprint.objects.exists()


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_blueprint_api_refuses_an_unstorable_step_id(superuser, quote_call, text, reason):
    blueprint = json.loads(json.dumps(BLUEPRINT))
    blueprint["steps"][1]["id"] = f"done{text}"

    response = post_json(superuser, "/api/blueprints/", blueprint)

    assert errors(response) == [f"steps[1].id: {reason}"]


def test_blueprint_api_names_a_parallel_branch_by_index_and_id(superuser, quote_call):
    blueprint = json.loads(json.dumps(BLUEPRINT))
    branch = {"id": "ask", "call": "shop.quote", "params": {"note": NUL}}
    blueprint["steps"][0] = {"id": "both", "parallel": [branch]}

    response = post_json(superuser, "/api/blueprints/", blueprint)

    expected = 'steps[0] (id "both").parallel[0] (id "ask").params.note: contains a NUL character'
    assert errors(response) == [expected]


@pytest.mark.parametrize("field", ["input_schema", "steps"])
def test_blueprint_api_refuses_nesting_deeper_than_the_limit(superuser, quote_call, field):
    blueprint = json.loads(json.dumps(BLUEPRINT))
    if field == "input_schema":
        blueprint["input_schema"] = {"type": "object", "default": nested(DEPTH)}
    else:
        blueprint["steps"][0]["params"] = {"deep": nested(DEPTH)}

    response = post_json(superuser, "/api/blueprints/", blueprint)

    assert errors(response) == [f"{field}: nested deeper than {DEPTH} levels"]


# The admin.


def admin_form(slug: str, name: str, definition: dict) -> dict:
    return {
        "slug": slug,
        "name": name,
        "definition": json.dumps(definition),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code  # the form again, not a save
    return {field: list(errs) for field, errs in response.context["adminform"].form.errors.items()}


@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_admin_api_call_form_shows_unstorable_text_at_its_field(admin_client, text, reason):
    definition = {"method": "GET", "url": "http://x.test/", "headers": {"X-Ref": f"r{text}"}}

    response = admin_client.post(
        "/admin/apicalls/apicall/add/", admin_form("shop.quote", "Quote", definition)
    )

    assert form_errors(response) == {"definition": [f"headers.X-Ref: {reason}"]}
    assert not ApiCall.objects.exists()


def test_admin_api_call_form_refuses_nul_in_its_name(admin_client):
    definition = {"method": "GET", "url": "http://x.test/"}

    response = admin_client.post(
        "/admin/apicalls/apicall/add/", admin_form("shop.quote", "Qu\x00ote", definition)
    )

    assert list(form_errors(response)) == ["name"]
    assert not ApiCall.objects.exists()


def test_admin_blueprint_form_names_the_step_at_the_steps_field(admin_client, quote_call):
    steps = json.loads(json.dumps(BLUEPRINT["steps"]))
    steps[0]["save"] = {"total": f"x{SURROGATE}"}
    form = {
        "slug": "flow",
        "name": "Flow",
        "description": "",
        "input_schema": "null",
        "steps": json.dumps(steps),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }

    response = admin_client.post("/admin/blueprints/blueprint/add/", form)

    reason = "contains a lone surrogate (\\ud800-\\udfff)"
    assert form_errors(response) == {"steps": [f'steps[0] (id "quote").save.total: {reason}']}


@pytest.mark.parametrize(
    "levels,error",
    [
        (DEPTH + 1, f"body: nested deeper than {DEPTH} levels"),
        (PAST_THE_PARSER, "nested too deeply"),
    ],
)
def test_admin_api_call_form_refuses_deep_json_at_its_field(admin_client, levels, error):
    form = admin_form("shop.quote", "Quote", {})
    deep = "[" * levels + "]" * levels
    form["definition"] = f'{{"method": "POST", "url": "http://x.test/", "body": {deep}}}'

    response = admin_client.post("/admin/apicalls/apicall/add/", form)

    assert form_errors(response) == {"definition": [error]}


@pytest.mark.parametrize(
    "query",
    [
        "created_at__gte=2026-01-01T00:00:00%2B20:00",
        "created_at__lt=0001-01-01T00:00:00%2B01:00",
    ],
)
def test_admin_order_list_with_an_impossible_date_is_a_bad_lookup(admin_client, shop, query):
    shop_order("A-1")

    response = admin_client.get(f"/admin/orders/order/?{query}")

    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_admin_order_list_reads_a_real_utc_offset(admin_client, shop):
    shop_order("A-1")

    response = admin_client.get(
        "/admin/orders/order/", {"created_at__gte": "2000-01-01T00:00:00+14:00"}
    )

    assert [order.order_id for order in response.context["cl"].result_list] == ["A-1"]


@pytest.mark.parametrize("name", ["q", "workflow", "failed_step", "current_step", "status"])
def test_admin_order_list_filter_holding_nul_is_400(admin_client, shop, name):
    response = admin_client.get("/admin/orders/order/", {name: "a\x00"})

    assert response.status_code == 400
    assert response.content.decode() == f"{name}: contains a NUL character"


def test_admin_order_page_opens_with_values_nested_too_deeply_to_show(admin_client, shop):
    order = shop_order("A-1")
    deep = {"deep": nested(900)}
    Order.objects.filter(pk=order.pk).update(payload=deep, data=deep)
    StepLog.objects.create(order=order, run=1, step="charge", request=deep, response=deep)

    response = admin_client.get(f"/admin/orders/order/{order.pk}/change/")

    assert response.status_code == 200
    assert '<pre class="sm-json">(nested too deeply to show)</pre>' in response.content.decode()


# The import command.


def import_text(text: str, tmp_path, stderr=None) -> None:
    path = tmp_path / "definitions.json"
    path.write_text(text, encoding="utf-8")
    call_command("import_definitions", str(path), stdout=io.StringIO(), stderr=stderr)


def import_errors(document, tmp_path) -> list[str]:
    """The errors import_definitions reports for `document`, one a line."""
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        import_text(json.dumps(document), tmp_path, stderr=err)
    return err.getvalue().splitlines()


@pytest.mark.django_db
@pytest.mark.parametrize("text,reason", BAD_TEXT)
def test_import_names_unstorable_text_with_its_definition_and_step(tmp_path, text, reason):
    document = definitions.document()
    document["blueprints"][0]["steps"][2]["retry"] = {"note": f"n{text}"}

    lines = import_errors(document, tmp_path)

    assert lines == [f'blueprints[0].steps[2] (id "charge").retry.note: {reason}']
    assert not Blueprint.objects.exists()
    assert not ApiCall.objects.exists()


@pytest.mark.django_db
def test_import_names_unstorable_text_in_a_header_name(tmp_path):
    document = definitions.document()
    document["api_calls"][1]["headers"] = {f"X-{NUL}": "1"}

    lines = import_errors(document, tmp_path)

    assert lines == ['api_calls[1].headers: the key "X-\\u0000" contains a NUL character']


@pytest.mark.django_db
def test_import_refuses_a_definition_nested_deeper_than_the_limit(tmp_path):
    document = definitions.document()
    document["api_calls"][0]["body"] = nested(DEPTH + 1)

    lines = import_errors(document, tmp_path)

    assert lines == [f"api_calls[0].body: nested deeper than {DEPTH} levels"]


@pytest.mark.django_db
def test_import_of_a_file_nested_past_the_parsers_recursion_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="not valid JSON: nested too deeply"):
        import_text("[" * PAST_THE_PARSER + "]" * PAST_THE_PARSER, tmp_path)


@pytest.mark.django_db
def test_import_of_a_file_that_is_not_utf8_is_a_command_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'{"api_calls": ["\xff"]}')

    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_definitions", str(path), stdout=io.StringIO())
