"""/api/blueprints/: CRUD by slug in the contract's JSON, validated as in the admin."""

from blueprints.models import Blueprint
from tests.statemanager.fixtures import *  # noqa: F403

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
    assert 'steps[0].on_failed: no step "refnd"' in errors
    assert any(error.startswith("steps[0].call: ") for error in errors)
    assert any(error.startswith("steps[1].id: ") for error in errors)
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
