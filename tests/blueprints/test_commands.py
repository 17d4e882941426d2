"""The import_definitions and export_definitions commands."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apicalls.models import ApiCall
from blueprints.models import Blueprint
from blueprints.services import definitions_import
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db


@pytest.fixture
def definitions_file(tmp_path):
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(definitions.document()))
    return path


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_command_stores_the_definitions_and_says_what_it_did(definitions_file):
    out, _ = run("import_definitions", str(definitions_file))
    assert "created: api call payments.charge" in out
    assert "created: blueprint ecommerce-order" in out
    assert out.rstrip().endswith("6 created, 0 updated, 0 unchanged.")
    assert Blueprint.objects.filter(slug="ecommerce-order").exists()


def test_import_command_reports_unchanged_definitions(definitions_file):
    run("import_definitions", str(definitions_file))
    out, _ = run("import_definitions", str(definitions_file))
    assert "unchanged: blueprint ecommerce-order" in out
    assert out.rstrip().endswith("0 created, 0 updated, 6 unchanged.")


def test_import_command_reads_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(definitions.document())))
    run("import_definitions", "-")
    assert ApiCall.objects.count() == 5


def test_import_command_prints_every_error_and_fails(tmp_path):
    document = definitions.document()
    document["api_calls"][0]["slug"] = "shop quote"
    document["blueprints"][0]["steps"][3]["next"] = "mail"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"^3 error\(s\) in .*bad.json; nothing was imported"):
        call_command("import_definitions", str(path), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "api_calls[0].slug: use only letters, digits, '.', '-' and '_'",
        'blueprints[0].steps[3] (id "fulfil").next: no step "mail"',
        'blueprints[0].steps[0] (id "validate").call: no API call "shop.quote"',
    ]
    assert not ApiCall.objects.exists()


def test_import_command_refuses_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(CommandError, match="not valid JSON"):
        run("import_definitions", str(path))


def test_export_command_writes_indented_json_to_stdout():
    definitions_import(document=definitions.document())
    out, _ = run("export_definitions")
    assert out.startswith('{\n  "api_calls": [\n')
    assert json.loads(out)["blueprints"] == [definitions.blueprint()]


def test_export_command_output_is_stable():
    definitions_import(document=definitions.document())
    assert run("export_definitions") == run("export_definitions")


def test_export_command_writes_to_a_file(tmp_path):
    definitions_import(document=definitions.document())
    path = tmp_path / "out.json"
    run("export_definitions", "--output", str(path))
    assert json.loads(path.read_text())["api_calls"][0]["slug"] == "mail.send"


def test_exported_file_imports_into_an_empty_database(tmp_path):
    definitions_import(document=definitions.document())
    path = tmp_path / "out.json"
    run("export_definitions", "--output", str(path))
    exported = path.read_text()
    Blueprint.objects.all().delete()
    ApiCall.objects.all().delete()
    run("import_definitions", str(path))
    assert run("export_definitions")[0] == exported
