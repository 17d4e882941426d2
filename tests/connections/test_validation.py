"""A connection's contract JSON as /api/connections/ checks it (contract section 10): each
kind's keys, credentials only as `{{ secrets.NAME }}`, templates that see `secrets` only
(and `request` in an hmac message), every problem a 400 naming its field."""

from __future__ import annotations

import json

import pytest

from tests.connections.conftest import CREDENTIALS, EXAMPLES, PAYPAL, with_value
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

CONNECTIONS = "/api/connections/"


def errors_of(client, body) -> list[str]:
    """The errors of posting `body` as JSON text (json.dumps escapes a lone surrogate as
    `\\ud800`, as a client's JSON would carry it)."""
    response = client.post(CONNECTIONS, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    return response.json()["errors"]


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_a_connection_of_each_kind_is_saved_and_read_back_as_written(editor, kind):
    created = editor.post(CONNECTIONS, EXAMPLES[kind], format="json")

    assert created.status_code == 201, created.content
    read = editor.get(f"{CONNECTIONS}{EXAMPLES[kind]['name']}/").json()
    assert read == EXAMPLES[kind]


@pytest.mark.parametrize(("kind", "place"), CREDENTIALS)
def test_a_literal_credential_is_refused_naming_the_field_without_repeating_it(editor, kind, place):
    errors = errors_of(editor, with_value(EXAMPLES[kind], place, "hunter2-literal"))

    assert errors == [
        f"{place}: must be a {{{{ secrets.NAME }}}} expression, not a literal credential"
    ]
    assert "hunter2" not in str(errors)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer {{ secrets.CRM_TOKEN }}",
        "{{ secrets.A }}{{ secrets.B }}",
        "{{ secrets.CRM_TOKEN | upper }}",
        "{{ input.token }}",
    ],
)
def test_a_credential_is_exactly_one_secret_expression(editor, value):
    errors = errors_of(editor, {**EXAMPLES["bearer"], "token": value})

    assert errors == [
        "token: must be exactly one {{ secrets.NAME }} expression, with nothing around it"
    ]


def test_a_credential_that_is_not_a_string_is_refused(editor):
    assert errors_of(editor, {**EXAMPLES["bearer"], "token": 12345}) == ["token: must be a string"]


def test_required_keys_of_the_kind_are_named(editor):
    errors = errors_of(editor, {"name": "paypal", "kind": "oauth2_client_credentials"})

    assert errors == [
        "token_url: required",
        "client_id: required",
        "client_secret: required",
        "client_auth: required",
    ]


def test_a_key_of_another_kind_is_unknown(editor):
    errors = errors_of(editor, {**EXAMPLES["bearer"], "username": "ann"})

    assert errors == ['username: unknown key for kind "bearer"']


@pytest.mark.parametrize(
    ("kind", "key", "reason"),
    [
        ("api_key", "in", 'must be one of "header", "query"'),
        ("oauth2_client_credentials", "client_auth", 'must be one of "basic", "body"'),
        ("hmac", "algorithm", 'must be one of "sha256", "sha512"'),
        ("hmac", "encoding", 'must be one of "hex", "base64"'),
    ],
)
def test_an_option_outside_its_choices_is_refused(editor, kind, key, reason):
    assert errors_of(editor, {**EXAMPLES[kind], key: "md5"}) == [f"{key}: {reason}"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**PAYPAL, "name": "pay pal"}, "name: use only letters, digits, '.', '-' and '_'"),
        ({**PAYPAL, "name": "p" * 101}, "name: must be at most 100 characters"),
        ({key: value for key, value in PAYPAL.items() if key != "name"}, "name: required"),
        ({**PAYPAL, "kind": "digest"}, "kind: must be one of"),
        ({**PAYPAL, "kind": ["bearer"]}, "kind: must be one of"),
    ],
)
def test_name_and_kind_are_checked(editor, body, error):
    errors = errors_of(editor, body)

    assert any(line.startswith(error) for line in errors), errors


def test_connection_templates_see_secrets_only(editor):
    errors = errors_of(editor, {**PAYPAL, "client_id": "{{ input.client }}"})

    assert errors == ['client_id: "{{ input.client }}": "input" is not available here; use secrets']


def test_the_hmac_message_sees_the_request_and_no_other_field_does(editor):
    hmac = {**EXAMPLES["hmac"], "message": "{{ request.body }}{{ data.total }}"}

    assert errors_of(editor, hmac) == [
        'message: "{{ request.body }}{{ data.total }}": "data" is not available here; '
        "use request, secrets"
    ]
    errors = errors_of(editor, {**PAYPAL, "scope": "{{ request.path }}"})
    assert errors == ['scope: "{{ request.path }}": unknown name "request": use secrets']


def test_a_template_that_does_not_compile_is_refused(editor):
    errors = errors_of(editor, {**PAYPAL, "token_url": "{{ secrets.PAYPAL_URL"})

    assert len(errors) == 1 and errors[0].startswith('token_url: "{{ secrets.PAYPAL_URL": ')


@pytest.mark.parametrize(
    ("certificate", "errors"),
    [
        (
            "{{ secrets.CERT }}",
            ['client_certificate: must be an object with "cert" and "key", or null'],
        ),
        ({"cert": "{{ secrets.CERT }}"}, ["client_certificate.key: required"]),
        (
            {"cert": "{{ secrets.CERT }}", "key": "{{ secrets.KEY }}", "password": "x"},
            ["client_certificate.password: unknown key of a certificate"],
        ),
    ],
)
def test_a_client_certificate_is_a_cert_and_a_key(editor, certificate, errors):
    assert errors_of(editor, {**PAYPAL, "client_certificate": certificate}) == errors


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**EXAMPLES["hmac"], "header": "X Signature"}, "header: must be a header name"),
        ({**EXAMPLES["api_key"], "param": "X Api Key"}, "param: must be a header name"),
        ({**EXAMPLES["api_key"], "param": ""}, "param: must not be empty"),
    ],
)
def test_header_names_are_header_names(editor, body, error):
    errors = errors_of(editor, body)

    assert len(errors) == 1 and errors[0].startswith(error), errors


def test_an_api_key_in_the_query_may_name_any_parameter(editor):
    body = {**EXAMPLES["api_key"], "in": "query", "param": "api key"}

    assert editor.post(CONNECTIONS, body, format="json").status_code == 201


@pytest.mark.parametrize("text", ["nul\x00", "lone \ud800"])
def test_text_the_database_cannot_store_is_refused_naming_the_field(editor, text):
    errors = errors_of(editor, {**PAYPAL, "scope": text})

    assert len(errors) == 1 and errors[0].startswith("scope: contains"), errors


def test_a_secret_not_set_on_this_machine_is_a_warning_and_the_connection_is_saved(
    editor, monkeypatch
):
    monkeypatch.setenv("STATE_MANAGER_SECRET_CRM_TOKEN", "t0k3n")
    saved = editor.post(CONNECTIONS, EXAMPLES["bearer"], format="json")
    assert saved.status_code == 201 and "warnings" not in saved.json()

    body = {**PAYPAL, "client_certificate": None}
    warned = editor.post(CONNECTIONS, body, format="json")

    assert warned.status_code == 201
    assert warned.json()["warnings"][0] == (
        'token_url: secret "PAYPAL_URL" is not set on this machine '
        "(environment variable STATE_MANAGER_SECRET_PAYPAL_URL)"
    )
