"""POST /api/blueprints/{slug}/pause/ and /resume/: who may, what they answer, and that
pausing is operations, not a new version of the definition."""

import pytest

from blueprints.models import Blueprint
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

PAUSE, RESUME = "/api/blueprints/shop/pause/", "/api/blueprints/shop/resume/"


def test_support_pauses_a_blueprint_and_the_answer_says_since_when_and_by_whom(support, shop):
    response = support.post(PAUSE)

    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "shop" and body["steps"] == shop.as_definition()["steps"]
    assert body["paused"] is True
    assert body["paused_by"] == support.user.username
    shop.refresh_from_db()
    assert shop.paused_at is not None
    assert body["paused_at"].startswith(shop.paused_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_pausing_again_keeps_the_first_pause_and_resume_clears_it(support, editor, shop):
    first = support.post(PAUSE).json()
    again = editor.post(PAUSE).json()
    assert (again["paused_at"], again["paused_by"]) == (first["paused_at"], first["paused_by"])

    resumed = editor.post(RESUME)
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is False
    assert (resumed.json()["paused_at"], resumed.json()["paused_by"]) == (None, "")
    assert editor.post(RESUME).json()["paused"] is False  # resuming a running one: no change


def test_pausing_makes_no_new_version_and_leaves_the_contract_json_alone(support, editor, shop):
    before = editor.get("/api/blueprints/shop/").json()

    support.post(PAUSE)

    shop.refresh_from_db()
    assert shop.version == 1 and shop.versions.count() == 1
    assert editor.get("/api/blueprints/shop/").json() == before  # no pause keys in the definition
    # Saving the same definition while paused stays a no-op, and keeps the pause.
    assert editor.put("/api/blueprints/shop/", before, format="json").status_code == 200
    shop.refresh_from_db()
    assert shop.version == 1 and shop.paused


def test_only_those_with_the_pause_permission_may_pause(integration, anonymous, superuser, shop):
    assert integration.post(PAUSE).status_code == 403
    assert integration.post(RESUME).status_code == 403
    assert anonymous.post(PAUSE).status_code == 401
    assert not Blueprint.objects.get(slug="shop").paused
    assert superuser.post(PAUSE).status_code == 200
    assert superuser.post("/api/blueprints/nothing/pause/").status_code == 404


def test_pause_and_resume_are_in_the_openapi_schema(superuser):
    schema = superuser.get("/api/schema/?format=json").json()

    for action in ("pause", "resume"):
        operation = schema["paths"][f"/api/blueprints/{{slug}}/{action}/"]["post"]
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/BlueprintPause"}
    paused = schema["components"]["schemas"]["BlueprintPause"]["properties"]
    assert all(paused[key]["readOnly"] for key in ("paused", "paused_at", "paused_by"))
