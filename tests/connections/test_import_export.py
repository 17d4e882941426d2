"""export_definitions / import_definitions with connections: they travel with the API
calls that name them, are imported first, are validated like the API validates them, and
a document without connections (an older export) imports as it did."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apicalls.models import ApiCall
from blueprints.models import Blueprint
from connections.models import Connection
from tests.blueprints import definitions
from tests.connections.conftest import EXAMPLES, PAYPAL, QUOTE_CALL

pytestmark = pytest.mark.django_db


def export(tmp_path) -> dict:
    path = tmp_path / "definitions.json"
    call_command("export_definitions", "--output", str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def import_document(tmp_path, document: dict) -> str:
    path = tmp_path / "import.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    out = io.StringIO()
    call_command("import_definitions", str(path), stdout=out)
    return out.getvalue()


def test_export_then_import_into_an_empty_database_gives_the_same_definitions(
    tmp_path, paypal_call
):
    import_document(tmp_path, {**definitions.document(), "connections": [EXAMPLES["bearer"]]})
    exported = export(tmp_path)
    assert [c["name"] for c in exported["connections"]] == ["crm", "paypal"]
    assert "paypal.orders" in [call["slug"] for call in exported["api_calls"]]

    Blueprint.objects.all().delete()
    ApiCall.objects.all().delete()
    Connection.objects.all().delete()
    output = import_document(tmp_path, exported)

    assert export(tmp_path) == exported
    assert "created: connection paypal" in output
    assert output.index("connection paypal") < output.index("api call paypal.orders")


def test_an_api_call_may_name_a_connection_of_the_same_document(tmp_path):
    output = import_document(tmp_path, {"connections": [PAYPAL], "api_calls": [QUOTE_CALL]})

    assert "created: connection paypal" in output and "created: api call paypal.orders" in output
    assert ApiCall.objects.get().definition["connection"] == "paypal"


def test_reimporting_reports_a_connection_unchanged_and_a_changed_one_updated(tmp_path, paypal):
    document = {"connections": [PAYPAL, {**EXAMPLES["bearer"]}]}
    first = import_document(tmp_path, document)
    assert "unchanged: connection paypal" in first and "created: connection crm" in first

    changed = {"connections": [{**PAYPAL, "scope": "payments"}]}
    assert "updated: connection paypal" in import_document(tmp_path, changed)
    assert Connection.objects.get(name="paypal").settings["scope"] == "payments"


def test_an_older_export_without_connections_still_imports(tmp_path):
    document = definitions.document()
    assert "connections" not in document

    import_document(tmp_path, document)

    assert Blueprint.objects.count() == 1 and not Connection.objects.exists()


def test_a_system_without_connections_exports_the_document_it_always_did(tmp_path):
    import_document(tmp_path, definitions.document())

    assert set(export(tmp_path)) == {"api_calls", "blueprints"}


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (
            {"connections": [{**PAYPAL, "client_secret": "hunter2"}]},
            "connections[0].client_secret: must be a {{ secrets.NAME }} expression, "
            "not a literal credential",
        ),
        (
            {"api_calls": [{**QUOTE_CALL, "connection": "nope"}]},
            'api_calls[0].connection: no connection named "nope"',
        ),
        ({"connections": [PAYPAL, PAYPAL]}, 'connections[1].name: duplicate name "paypal"'),
        ({"connections": {"paypal": PAYPAL}}, "connections: must be a list"),
    ],
)
def test_an_invalid_document_imports_nothing_and_names_the_place(tmp_path, capsys, document, error):
    with pytest.raises(CommandError, match="nothing was imported"):
        import_document(tmp_path, {**document, "api_calls": document.get("api_calls", [])})

    assert error in capsys.readouterr().err
    assert not Connection.objects.exists() and not ApiCall.objects.exists()
