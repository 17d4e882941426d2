"""The definition JSON Schemas are public at /schemas/, for editors and CI."""

import json

import pytest
from jsonschema import Draft202012Validator

from tests.blueprints import definitions


@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("/schemas/api-call.schema.json", "API call"),
        ("/schemas/blueprint.schema.json", "Workflow blueprint"),
    ],
)
def test_schema_file_is_served_without_login(client, url, title):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/schema+json"
    schema = json.loads(response.content)
    Draft202012Validator.check_schema(schema)
    assert schema["title"] == title


def test_served_schemas_accept_the_contract_example(client):
    api_call_schema = client.get("/schemas/api-call.schema.json").json()
    blueprint_schema = client.get("/schemas/blueprint.schema.json").json()
    for api_call in definitions.API_CALLS:
        Draft202012Validator(api_call_schema).validate(api_call)
    Draft202012Validator(blueprint_schema).validate(definitions.blueprint())


def test_schema_files_are_read_only(client):
    assert client.post("/schemas/blueprint.schema.json").status_code == 405
