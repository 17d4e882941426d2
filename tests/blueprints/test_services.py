"""Saving blueprints with versions, and the snapshots orders run on."""

import pytest

from apicalls.services import api_call_save
from blueprints.models import Blueprint, BlueprintVersion, WorkflowSnapshot
from blueprints.services import api_call_slugs, blueprint_save, workflow_snapshot
from definitions.validation import DefinitionError, validate_blueprint
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db


@pytest.fixture
def blueprint(example_api_calls, editor):
    return blueprint_save(definition=definitions.blueprint(), user=editor)


def test_new_blueprint_is_version_one_with_its_contract_json(blueprint, editor):
    version = blueprint.versions.get()
    assert (blueprint.version, version.version) == (1, 1)
    assert version.definition == definitions.blueprint()
    assert version.created_by == editor


def test_blueprint_is_validated_against_the_api_calls_in_the_database(example_api_calls):
    definition = definitions.blueprint()
    definition["steps"][4]["call"] = "ops.page"
    with pytest.raises(DefinitionError) as caught:
        blueprint_save(definition=definition)
    assert caught.value.errors == ['steps[4] (id "review").call: no API call "ops.page"']
    assert not Blueprint.objects.exists()


def test_changed_blueprint_gets_a_new_version(blueprint):
    changed = {**definitions.blueprint(), "description": "Quote, charge, ship."}
    blueprint = blueprint_save(definition=changed)
    assert blueprint.version == 2
    assert blueprint.versions.get(version=2).definition == changed


def test_identical_blueprint_save_adds_no_version(blueprint):
    blueprint = blueprint_save(definition=definitions.blueprint())
    assert blueprint.version == 1
    assert BlueprintVersion.objects.count() == 1


def test_snapshot_keeps_the_definition_of_its_time(blueprint):
    snapshot = workflow_snapshot(blueprint=blueprint)
    changed = definitions.blueprint()
    changed["steps"][5]["error"] = "payment refused"
    blueprint_save(definition=changed)
    snapshot.refresh_from_db()
    assert snapshot.definition["blueprint"] == definitions.blueprint()
    assert snapshot.blueprint_version == 1


def test_snapshot_keeps_the_api_calls_of_its_time(blueprint):
    snapshot = workflow_snapshot(blueprint=blueprint)
    api_call_save(definition={**definitions.api_call("payments.charge"), "timeout_seconds": 60})
    snapshot.refresh_from_db()
    assert snapshot.definition["api_calls"]["payments.charge"]["timeout_seconds"] == 10


def test_snapshot_after_an_edit_is_a_new_one(blueprint):
    before = workflow_snapshot(blueprint=blueprint)
    changed = {**definitions.blueprint(), "name": "E-commerce order (v2)"}
    after = workflow_snapshot(blueprint=blueprint_save(definition=changed))
    assert after.pk != before.pk
    assert (after.definition["blueprint"]["name"], after.blueprint_version) == (
        "E-commerce order (v2)",
        2,
    )


def test_snapshot_is_shared_by_identical_definitions(blueprint):
    first = workflow_snapshot(blueprint=blueprint)
    second = workflow_snapshot(blueprint=Blueprint.objects.get(slug="ecommerce-order"))
    assert first.pk == second.pk
    assert WorkflowSnapshot.objects.count() == 1


def test_snapshot_holds_every_api_call_the_blueprint_uses(blueprint):
    snapshot = workflow_snapshot(blueprint=blueprint)
    assert snapshot.workflow == "ecommerce-order"
    assert snapshot.definition["api_calls"] == {
        call["slug"]: call for call in definitions.document()["api_calls"]
    }


def test_snapshot_includes_api_calls_used_only_in_parallel_branches(example_api_calls):
    definition = {
        "slug": "notify",
        "name": "Notify",
        "steps": [{"id": "both", "parallel": [{"id": "mail", "call": "mail.send"}]}],
    }
    snapshot = workflow_snapshot(blueprint=blueprint_save(definition=definition))
    assert list(snapshot.definition["api_calls"]) == ["mail.send"]


def test_a_notify_url_is_kept_in_the_blueprint_its_versions_and_snapshots(example_api_calls):
    document = definitions.blueprint()
    url = "https://shop.example/orders/{{ order.order_id }}/events"
    saved = blueprint_save(definition={**document, "notify_url": url})

    assert saved.as_definition()["notify_url"] == url
    assert saved.versions.get().definition["notify_url"] == url
    snapshot = workflow_snapshot(blueprint=saved)
    assert snapshot.definition["blueprint"]["notify_url"] == url
    assert "notify_url" not in blueprint_save(definition=document).as_definition()


def test_a_concurrency_key_is_kept_in_the_blueprint_its_versions_and_snapshots(
    example_api_calls,
):
    document = definitions.blueprint()
    key = "{{ input.customer_id }}"
    saved = blueprint_save(definition={**document, "concurrency_key": key})

    assert saved.as_definition()["concurrency_key"] == key
    assert saved.versions.get().definition["concurrency_key"] == key
    snapshot = workflow_snapshot(blueprint=saved)
    assert snapshot.definition["blueprint"]["concurrency_key"] == key
    assert "concurrency_key" not in blueprint_save(definition=document).as_definition()


def test_a_concurrency_key_may_name_only_input_and_order(example_api_calls):
    document = definitions.blueprint() | {"concurrency_key": "{{ data.customer_id }}"}

    with pytest.raises(DefinitionError) as caught:
        validate_blueprint(document, api_call_slugs=api_call_slugs())
    assert any("concurrency_key" in error for error in caught.value.errors)
