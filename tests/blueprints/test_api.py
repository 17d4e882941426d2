"""/api/blueprints/: CRUD by slug in the contract's JSON, validated as in the admin."""

from blueprints.models import Blueprint
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

FLOW = {
    "slug": "refunds",
    "name": "Refunds",
    "description": "Give the money back.",
    "input_schema": {"type": "object", "required": ["order"]},
    "steps": [
        {"id": "refund", "call": "shop.charge", "on_failed": "reject"},
        {"id": "reject", "end": "failed", "error": "no refund"},
    ],
}


def test_create_returns_the_contract_json(editor, shop):
    response = editor.post("/api/blueprints/", FLOW, format="json")

    assert response.status_code == 201
    assert response.json() == FLOW


def test_read_one(editor, shop):
    editor.post("/api/blueprints/", FLOW, format="json")

    assert editor.get("/api/blueprints/refunds/").json() == FLOW


def test_invalid_blueprint_names_each_place(editor, shop):
    steps = [
        {"id": "refund", "call": "nope", "on_failed": "refnd"},
        {"id": "refund", "end": "failed"},
    ]

    response = editor.post("/api/blueprints/", {**FLOW, "steps": steps}, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert 'steps[0] (id "refund").on_failed: no step "refnd"' in errors
    assert any(error.startswith('steps[0] (id "refund").call: ') for error in errors)
    assert any(error.startswith('steps[1] (id "refund").id: ') for error in errors)
    assert not Blueprint.objects.filter(slug="refunds").exists()


def test_invalid_input_schema_is_refused(editor, shop):
    response = editor.post(
        "/api/blueprints/", {**FLOW, "input_schema": {"type": "thing"}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("input_schema: ")


def test_body_that_is_not_an_object_is_refused(editor, shop):
    response = editor.post("/api/blueprints/", ["not", "an", "object"], format="json")

    assert response.status_code == 400
    assert response.json() == {"errors": ["body: must be a JSON object"]}


def test_replace_keeps_earlier_versions(editor, shop):
    editor.post("/api/blueprints/", FLOW, format="json")

    response = editor.put("/api/blueprints/refunds/", {**FLOW, "name": "Refund"}, format="json")

    blueprint = Blueprint.objects.get(slug="refunds")
    assert response.status_code == 200
    assert blueprint.version == 2
    assert [version.definition["name"] for version in blueprint.versions.all()] == [
        "Refund",
        "Refunds",
    ]


def test_delete(editor, shop):
    editor.post("/api/blueprints/", FLOW, format="json")

    assert editor.delete("/api/blueprints/refunds/").status_code == 204
    assert not Blueprint.objects.filter(slug="refunds").exists()


def test_a_secret_not_set_here_is_a_warning_after_a_replace(editor, shop, monkeypatch):
    monkeypatch.delenv("STATE_MANAGER_SECRET_SHOP_KEY", raising=False)
    editor.post("/api/blueprints/", FLOW, format="json")
    steps = [{**FLOW["steps"][0], "params": {"key": "{{ secrets.SHOP_KEY }}"}}, FLOW["steps"][1]]

    response = editor.patch("/api/blueprints/refunds/", {"steps": steps}, format="json")

    assert response.status_code == 200
    assert response.json()["warnings"] == [
        'steps[0] (id "refund").params.key: secret "SHOP_KEY" is not set on this machine '
        "(environment variable STATE_MANAGER_SECRET_SHOP_KEY)"
    ]
    assert Blueprint.objects.get(slug="refunds").steps == steps


def test_an_unknown_expression_root_is_refused_with_a_suggestion(editor, shop):
    steps = [{**FLOW["steps"][0], "params": {"kind": "{{ inptu.kind }}"}}, FLOW["steps"][1]]

    response = editor.post("/api/blueprints/", {**FLOW, "steps": steps}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        'steps[0] (id "refund").params.kind: "{{ inptu.kind }}": '
        'unknown name "inptu": did you mean "input"?'
    ]


def test_renaming_a_step_failed_orders_are_parked_at_is_not_refused(editor, shop):
    shop_order("A-1", status="failed", failed_step="charge", resume_point={"step": "charge"})
    steps = [{"id": "pay", "call": "shop.charge"}, shop.steps[1]]

    response = editor.patch("/api/blueprints/shop/", {"steps": steps}, format="json")

    assert response.status_code == 200
    assert Blueprint.objects.get(slug="shop").version == 2
