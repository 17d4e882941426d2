"""Connections in the admin: the list with the API calls that name each one, the change
form with each error at its field, the delete a user would break kept, the "Test" button
and who may do what."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apicalls.models import ApiCall
from connections.models import Connection
from tests.admin_fixtures import *  # noqa: F403
from tests.admin_fixtures import staff_in
from tests.connections.conftest import PAYPAL, QUOTE_CALL

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:connections_connection_changelist")
ADD = reverse("admin:connections_connection_add")


def change_url(connection: Connection) -> str:
    return reverse("admin:connections_connection_change", args=[connection.pk])


def url_of_test(connection: Connection) -> str:
    return reverse("admin:connections_connection_test", args=[connection.pk])


def form_data(definition: dict) -> dict:
    settings = {key: value for key, value in definition.items() if key not in ("name", "kind")}
    return {
        "name": definition["name"],
        "kind": definition["kind"],
        "settings": json.dumps(settings),
    }


def test_the_list_shows_name_kind_and_the_api_calls_that_use_each(
    admin_client_for, support, paypal_call
):
    Connection.objects.create(name="crm", kind="bearer", settings={"token": "{{ secrets.T }}"})

    page = admin_client_for(support).get(CHANGELIST)

    assert page.status_code == 200
    text = page.text
    assert "paypal" in text and "OAuth2 client credentials" in text
    api_call_url = reverse("admin:apicalls_apicall_change", args=[paypal_call.pk])
    assert f'<a href="{api_call_url}">paypal.orders</a>' in text
    assert "no API call" in text  # crm


def test_an_editor_adds_a_connection_through_the_form(admin_client_for, editor):
    response = admin_client_for(editor).post(ADD, form_data(PAYPAL), follow=True)

    assert response.status_code == 200
    assert Connection.objects.get().as_definition() == PAYPAL


def test_a_literal_credential_is_shown_at_the_settings_field(admin_client_for, editor):
    body = {**PAYPAL, "client_secret": "hunter2"}

    page = admin_client_for(editor).post(ADD, form_data(body))

    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert errors["settings"] == [
        "client_secret: must be a {{ secrets.NAME }} expression, not a literal credential"
    ]
    assert not Connection.objects.exists()


def test_name_and_kind_errors_are_shown_at_their_fields(admin_client_for, editor):
    page = admin_client_for(editor).post(ADD, form_data({**PAYPAL, "kind": "digest"}))

    assert "kind" in page.context["adminform"].form.errors
    assert not Connection.objects.exists()


def test_an_editor_changes_a_connection_and_cannot_rename_it(admin_client_for, editor, paypal):
    client = admin_client_for(editor)
    page = client.get(change_url(paypal))
    assert page.status_code == 200
    assert 'name="name"' not in page.text  # read-only once saved

    data = form_data({**PAYPAL, "scope": "payments"})
    response = client.post(change_url(paypal), {**data, "name": "renamed"}, follow=True)

    assert response.status_code == 200
    paypal.refresh_from_db()
    assert paypal.name == "paypal" and paypal.settings["scope"] == "payments"


def test_support_sees_a_connection_and_may_not_change_it(admin_client_for, support, paypal):
    client = admin_client_for(support)
    page = client.get(change_url(paypal))

    assert page.status_code == 200
    assert "{{ secrets.PAYPAL_CLIENT_SECRET }}" in page.text
    assert client.post(change_url(paypal), form_data({**PAYPAL, "scope": "x"})).status_code == 403
    assert client.get(ADD).status_code == 403


def test_integrations_have_no_connection_pages(admin_client_for, integration, paypal):
    client = admin_client_for(integration)

    assert client.get(CHANGELIST).status_code == 302  # not staff: to the login page
    assert client.post(url_of_test(paypal)).status_code == 302


def test_a_connection_an_api_call_uses_is_protected_from_deletion(
    admin_client_for, editor, paypal_call
):
    paypal = Connection.objects.get(name="paypal")
    delete_url = reverse("admin:connections_connection_delete", args=[paypal.pk])

    page = admin_client_for(editor).post(delete_url, {"post": "yes"})

    assert "Api call: paypal.orders (uses paypal)" in page.text
    assert Connection.objects.filter(name="paypal").exists()


def test_an_unused_connection_is_deleted(admin_client_for, editor, paypal):
    delete_url = reverse("admin:connections_connection_delete", args=[paypal.pk])

    admin_client_for(editor).post(delete_url, {"post": "yes"}, follow=True)

    assert not Connection.objects.exists()


@pytest.mark.parametrize("role", ["editor", "support"])
def test_the_test_button_runs_the_registered_tester_and_shows_its_outcome(
    admin_client_for, request, role, paypal, tester
):
    """The tester is a fake (see the `tester` fixture): this tests the button's wiring."""
    client = admin_client_for(request.getfixturevalue(role))
    page = client.get(change_url(paypal))
    assert 'id="test-connection-button"' in page.text
    assert url_of_test(paypal) in page.text

    outcome = client.post(url_of_test(paypal))

    assert outcome.status_code == 200
    assert "Succeeded" in outcome.text
    assert "Token fetched from the token URL of paypal." in outcome.text
    assert "&quot;access_token&quot;: &quot;***&quot;" in outcome.text
    assert tester.seen == ["paypal"]


def test_the_test_page_runs_nothing_on_a_get(admin_client_for, editor, paypal, tester):
    assert admin_client_for(editor).get(url_of_test(paypal)).status_code == 405
    assert tester.seen == []


def test_without_a_tester_the_button_says_so(admin_client_for, editor, paypal, no_tester):
    outcome = admin_client_for(editor).post(url_of_test(paypal))

    assert "Failed" in outcome.text
    assert "No tester is registered" in outcome.text


def test_a_user_without_the_test_permission_gets_no_button_and_no_test(
    admin_client_for, paypal, tester
):
    viewer = staff_in(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_connection"))
    client = admin_client_for(viewer)

    assert 'id="test-connection-button"' not in client.get(change_url(paypal)).text
    assert client.post(url_of_test(paypal)).status_code == 403
    assert tester.seen == []


def test_the_api_call_form_refuses_a_missing_connection_at_the_definition_field(
    admin_client_for, editor
):
    definition = {key: value for key, value in QUOTE_CALL.items() if key not in ("slug", "name")}
    data = {"slug": "paypal.orders", "name": "Orders", "definition": json.dumps(definition)}

    page = admin_client_for(editor).post(reverse("admin:apicalls_apicall_add"), data)

    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert errors["definition"] == ['connection: no connection named "paypal"']
    assert not ApiCall.objects.exists()
