"""definitions_export / definitions_import: the round trip, all-or-nothing, every error."""

import pytest

from apicalls.models import ApiCall
from apicalls.services import api_call_save
from blueprints.models import Blueprint
from blueprints.services import definitions_export, definitions_import
from definitions.validation import DefinitionError
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db


def outcomes(report) -> list[tuple[str, str, str]]:
    return [(item.kind, item.slug, item.outcome) for item in report.definitions]


def test_import_creates_api_calls_and_blueprints_that_use_them():
    report = definitions_import(document=definitions.document())
    assert report.count("created") == 6
    assert Blueprint.objects.get().as_definition() == definitions.blueprint()
    assert ApiCall.objects.count() == 5


def test_import_reports_created_updated_and_unchanged():
    api_call_save(definition=definitions.api_call("shop.quote"))
    api_call_save(definition={**definitions.api_call("mail.send"), "name": "Old name"})
    report = definitions_import(document=definitions.document())
    assert outcomes(report) == [
        ("api call", "shop.quote", "unchanged"),
        ("api call", "payments.charge", "created"),
        ("api call", "shipping.create", "created"),
        ("api call", "mail.send", "updated"),
        ("api call", "ops.ticket", "created"),
        ("blueprint", "ecommerce-order", "created"),
    ]


def test_reimport_changes_nothing():
    definitions_import(document=definitions.document())
    report = definitions_import(document=definitions.document())
    assert report.count("unchanged") == 6
    assert {b.version for b in Blueprint.objects.all()} == {1}


def test_export_then_import_into_an_empty_database_gives_identical_definitions():
    definitions_import(document=definitions.document())
    exported = definitions_export()
    Blueprint.objects.all().delete()
    ApiCall.objects.all().delete()
    definitions_import(document=exported)
    assert definitions_export() == exported


def test_export_is_ordered_by_slug_with_contract_json():
    definitions_import(document=definitions.document())
    exported = definitions_export()
    assert [call["slug"] for call in exported["api_calls"]] == sorted(definitions.API_CALL_SLUGS)
    assert exported["blueprints"] == [definitions.blueprint()]


def test_export_puts_the_contract_keys_in_reading_order():
    definitions_import(document=definitions.document())
    exported = definitions_export()
    charge = next(c for c in exported["api_calls"] if c["slug"] == "payments.charge")
    assert list(charge)[:4] == ["slug", "name", "method", "url"]
    assert list(exported["blueprints"][0]["steps"][0]) == ["id", "call", "save", "on_failed"]


def test_import_reports_every_invalid_definition_and_stores_nothing():
    document = definitions.document()
    document["api_calls"][1]["method"] = "FETCH"
    document["api_calls"][3]["url"] = "{{ secrets.MAIL_URL | nosuch }}"
    document["blueprints"][0]["steps"][2]["on_failed"] = "refnd"
    with pytest.raises(DefinitionError) as caught:
        definitions_import(document=document)
    assert caught.value.errors == [
        'api_calls[1].method: must be one of "GET", "POST", "PUT", "PATCH", "DELETE"',
        'api_calls[3].url: "{{ secrets.MAIL_URL | nosuch }}": unknown function "nosuch"',
        'blueprints[0].steps[2] (id "charge").on_failed: no step "refnd"',
    ]
    assert not ApiCall.objects.exists() and not Blueprint.objects.exists()


def test_imported_blueprint_may_use_api_calls_already_in_the_database():
    for call in definitions.API_CALLS:
        api_call_save(definition=call)
    report = definitions_import(document={"blueprints": [definitions.blueprint()]})
    assert outcomes(report) == [("blueprint", "ecommerce-order", "created")]


def test_imported_blueprint_calling_an_unknown_api_call_is_refused():
    document = definitions.document()
    del document["api_calls"][4]
    with pytest.raises(DefinitionError) as caught:
        definitions_import(document=document)
    assert caught.value.errors == [
        'blueprints[0].steps[4] (id "review").call: no API call "ops.ticket"'
    ]


def test_import_refuses_the_same_slug_twice():
    document = definitions.document()
    document["api_calls"].append(definitions.api_call("shop.quote"))
    with pytest.raises(DefinitionError) as caught:
        definitions_import(document=document)
    assert caught.value.errors == ['api_calls[5].slug: duplicate slug "shop.quote"']


def test_import_refuses_a_document_of_another_shape():
    with pytest.raises(DefinitionError) as caught:
        definitions_import(document={"apicalls": [], "blueprints": {}})
    assert caught.value.errors == ["apicalls: unknown key", "blueprints: must be a list"]
