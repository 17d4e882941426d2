"""Editing API calls and blueprints in the admin: the one validator, versions, try it."""

import json

import pytest
from django.urls import reverse

from apicalls.models import ApiCall, ApiCallVersion
from apicalls.services import api_call_save
from blueprints.models import Blueprint, BlueprintVersion
from definitions.validation import DefinitionError
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db


def blueprint_post(definition: dict) -> dict:
    return {
        "slug": definition["slug"],
        "name": definition["name"],
        "description": definition.get("description", ""),
        "input_schema": json.dumps(definition.get("input_schema")),
        "steps": json.dumps(definition["steps"]),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }


def api_call_post(definition: dict) -> dict:
    body = {k: v for k, v in definition.items() if k not in ("slug", "name")}
    return {
        "slug": definition["slug"],
        "name": definition["name"],
        "definition": json.dumps(body),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }


def field_errors(response, field: str) -> list[str]:
    return list(response.context["adminform"].form.errors.get(field, []))


def test_blueprint_pages_render(admin_client_for, superuser, blueprint):
    client = admin_client_for(superuser)
    assert client.get(reverse("admin:blueprints_blueprint_changelist")).status_code == 200
    assert client.get(reverse("admin:blueprints_blueprint_add")).status_code == 200
    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]))
    assert page.status_code == 200
    assert 'class="sm-json-editor"' in page.text
    assert "\n    {\n      &quot;id&quot;: &quot;validate&quot;" in page.text  # indented JSON


def test_blueprint_list_searches_by_slug(admin_client_for, superuser, blueprint):
    client = admin_client_for(superuser)
    found = client.get(reverse("admin:blueprints_blueprint_changelist"), {"q": "ecommerce"})
    missed = client.get(reverse("admin:blueprints_blueprint_changelist"), {"q": "nothing-like"})
    assert list(found.context["cl"].result_list) == [blueprint]
    assert list(missed.context["cl"].result_list) == []


def test_blueprint_change_page_shows_the_flow_diagram(admin_client_for, superuser, blueprint):
    client = admin_client_for(superuser)
    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]))
    assert "<svg" in page.text
    assert 'data-step="fulfil.ship"' in page.text
    assert ">on_failed<" in page.text


def test_blueprint_unknown_on_failed_target_is_shown_at_the_steps_field(
    admin_client_for, superuser, blueprint
):
    definition = definitions.blueprint()
    definition["steps"][2]["on_failed"] = "refnd"
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        blueprint_post(definition),
    )
    assert response.status_code == 200
    assert field_errors(response, "steps") == ['steps[2] (id "charge").on_failed: no step "refnd"']
    assert Blueprint.objects.get(pk=blueprint.pk).version == 1


def test_blueprint_invalid_input_schema_is_shown_at_its_field(
    admin_client_for, superuser, blueprint
):
    definition = definitions.blueprint()
    definition["input_schema"] = {"type": "no-such-type"}
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        blueprint_post(definition),
    )
    errors = field_errors(response, "input_schema")
    assert len(errors) == 1 and errors[0].startswith("input_schema: not a valid JSON Schema")
    assert field_errors(response, "steps") == []


def test_blueprint_unknown_expression_function_is_shown_at_the_steps_field(
    admin_client_for, superuser, blueprint
):
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["when"] = "{{ data.total | nosuchfunction }}"
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        blueprint_post(definition),
    )
    errors = field_errors(response, "steps")
    assert len(errors) == 1 and errors[0].startswith('steps[1] (id "route").choice[0].when:')


def test_blueprint_save_writes_a_version_by_the_editor(admin_client_for, superuser, blueprint):
    definition = definitions.blueprint()
    definition["name"] = "E-commerce order, renamed"
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        blueprint_post(definition),
    )
    assert response.status_code == 302
    blueprint.refresh_from_db()
    assert (blueprint.name, blueprint.version) == ("E-commerce order, renamed", 2)
    latest = BlueprintVersion.objects.get(blueprint=blueprint, version=2)
    assert latest.created_by == superuser
    assert latest.definition["name"] == "E-commerce order, renamed"


def test_blueprint_add_creates_version_one(admin_client_for, superuser, blueprint):
    definition = definitions.blueprint()
    definition["slug"] = "ecommerce-copy"
    client = admin_client_for(superuser)
    response = client.post(reverse("admin:blueprints_blueprint_add"), blueprint_post(definition))
    assert response.status_code == 302
    copy = Blueprint.objects.get(slug="ecommerce-copy")
    assert copy.version == 1
    assert copy.versions.get().created_by == superuser


def test_blueprint_page_lists_past_versions(admin_client_for, superuser, blueprint):
    definition = definitions.blueprint()
    definition["name"] = "Second"
    client = admin_client_for(superuser)
    client.post(
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        blueprint_post(definition),
    )
    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]))
    versions = page.context["inline_admin_formsets"][0].formset.queryset
    assert [version.version for version in versions] == [2, 1]


def test_api_call_missing_url_is_shown_at_the_definition_field(
    admin_client_for, superuser, blueprint
):
    api_call = ApiCall.objects.get(slug="payments.charge")
    definition = api_call.as_definition()
    del definition["url"]
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:apicalls_apicall_change", args=[api_call.pk]), api_call_post(definition)
    )
    assert field_errors(response, "definition") == ["url: required"]


def test_api_call_bad_slug_is_shown_at_the_slug_field(admin_client_for, superuser, blueprint):
    definition = {**definitions.API_CALLS[0], "slug": "has space"}
    client = admin_client_for(superuser)
    response = client.post(reverse("admin:apicalls_apicall_add"), api_call_post(definition))
    assert response.status_code == 200
    assert field_errors(response, "slug")


def test_api_call_save_writes_a_version(admin_client_for, superuser, blueprint):
    api_call = ApiCall.objects.get(slug="payments.charge")
    definition = {**api_call.as_definition(), "timeout_seconds": 20}
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:apicalls_apicall_change", args=[api_call.pk]), api_call_post(definition)
    )
    assert response.status_code == 302
    latest = ApiCallVersion.objects.filter(api_call=api_call).order_by("-version").first()
    assert (latest.version, latest.created_by) == (2, superuser)
    assert latest.definition["timeout_seconds"] == 20


def test_api_call_used_by_a_blueprint_cannot_be_deleted(admin_client_for, superuser, blueprint):
    api_call = ApiCall.objects.get(slug="payments.charge")
    client = admin_client_for(superuser)
    response = client.post(
        reverse("admin:apicalls_apicall_delete", args=[api_call.pk]), {"post": "yes"}
    )
    assert "ecommerce-order" in response.text
    assert ApiCall.objects.filter(pk=api_call.pk).exists()


def test_functions_page_lists_project_and_builtin_functions(admin_client_for, superuser, blueprint):
    client = admin_client_for(superuser)
    page = client.get(reverse("admin:blueprints_blueprint_functions"))
    assert page.status_code == 200
    assert 'id="function-add_days"' in page.text
    assert 'id="function-first"' in page.text


def test_definition_pages_link_the_functions_page(admin_client_for, superuser, blueprint):
    client = admin_client_for(superuser)
    api_call = ApiCall.objects.get(slug="payments.charge")
    functions = reverse("admin:blueprints_blueprint_functions")
    for url in (
        reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]),
        reverse("admin:apicalls_apicall_change", args=[api_call.pk]),
        reverse("admin:index"),
    ):
        assert functions in client.get(url).text


def test_try_it_renders_the_request_with_secrets_masked(
    admin_client_for, superuser, blueprint, monkeypatch
):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_URL", "https://pay.example.test")
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", "tok-very-secret")
    api_call = ApiCall.objects.get(slug="payments.charge")
    client = admin_client_for(superuser)
    url = reverse("admin:apicalls_apicall_try", args=[api_call.pk])
    assert client.get(url).status_code == 200
    page = client.post(url, {"input": "{}", "params": "{}", "data": '{"total": 42}'})
    preview = page.context["preview"]
    assert preview["method"] == "POST"
    assert preview["body"]["amount"] == 42
    assert "tok-very-secret" not in page.text
    assert "pay.example.test" not in page.text
    assert "***" in preview["headers"]["Authorization"]


def test_try_it_shows_the_expression_error(admin_client_for, superuser, blueprint, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_SHOP_URL", "https://shop.example.test")
    api_call = ApiCall.objects.get(slug="shop.quote")
    client = admin_client_for(superuser)
    page = client.post(
        reverse("admin:apicalls_apicall_try", args=[api_call.pk]),
        {"input": "[1, 2]", "params": "{}", "data": "{}"},
    )
    assert page.context["preview"] is None
    assert page.context["error"]
    assert 'id="try-error"' in page.text


def test_try_it_shows_a_form_body_as_it_would_be_sent(
    admin_client_for, superuser, blueprint, monkeypatch
):
    monkeypatch.setenv("STATE_MANAGER_SECRET_STRIPE_KEY", "sk_test_secret")
    api_call = api_call_save(
        definition={
            "slug": "stripe.intent",
            "name": "Stripe payment intent",
            "method": "POST",
            "url": "https://api.stripe.example/v1/payment_intents",
            "headers": {"Authorization": "Bearer {{ secrets.STRIPE_KEY }}"},
            "body_type": "form",
            "body": {"amount": "{{ data.total }}", "metadata": {"order_id": "A-1"}},
        }
    )
    client = admin_client_for(superuser)
    page = client.post(
        reverse("admin:apicalls_apicall_try", args=[api_call.pk]),
        {"input": "{}", "params": "{}", "data": '{"total": 42}'},
    )

    preview = page.context["preview"]
    assert preview["body"] == "amount=42&metadata%5Border_id%5D=A-1"
    assert preview["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "sk_test_secret" not in page.text


def test_try_it_shows_the_reason_a_sample_refusal_would_give(
    admin_client_for, superuser, blueprint, monkeypatch
):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_URL", "https://pay.example.test")
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", "tok-very-secret")
    api_call = ApiCall.objects.get(slug="payments.charge")
    api_call_save(
        definition={
            **api_call.as_definition(),
            "error_message": "{{ response.body.problem }} ({{ secrets.PAYMENTS_TOKEN }})",
        }
    )
    refusal = '{"status": 422, "body": {"problem": "card expired"}}'

    page = admin_client_for(superuser).post(
        reverse("admin:apicalls_apicall_try", args=[api_call.pk]),
        {"input": "{}", "params": "{}", "data": "{}", "failed_response": refusal},
    )

    assert page.context["reason"] == "HTTP 422: card expired (***)"
    assert 'id="try-reason"' in page.text and "tok-very-secret" not in page.text


def test_an_api_calls_error_message_that_does_not_compile_is_refused(
    admin_client_for, superuser, blueprint
):
    api_call = ApiCall.objects.get(slug="payments.charge")
    with pytest.raises(DefinitionError, match="error_message"):
        api_call_save(definition={**api_call.as_definition(), "error_message": "{{ response. }}"})
