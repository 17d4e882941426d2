"""Role boundaries in the admin: editors edit definitions, support works orders, integrations
have no admin at all."""

import pytest
from django.urls import reverse

from apicalls.models import ApiCall
from orders.models import Order
from tests.admin_fixtures import *  # noqa: F403 (the admin's users, not the conftest's API clients)

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


def action_names(page) -> set[str]:
    form = page.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name}


def test_editor_can_change_blueprints_and_api_calls(admin_client_for, editor, blueprint):
    client = admin_client_for(editor)
    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]))
    assert page.context["has_change_permission"] is True
    assert client.get(reverse("admin:apicalls_apicall_add")).status_code == 200


def test_editor_sees_orders_but_has_no_bulk_actions(admin_client_for, editor, make_orders):
    make_orders(1)
    page = admin_client_for(editor).get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert page.context["action_form"] is None or not action_names(page)


def test_editor_cannot_reprocess_by_posting_the_action(admin_client_for, editor, make_orders):
    (order,) = make_orders(1)
    admin_client_for(editor).post(
        reverse(CHANGELIST),
        {"action": "reprocess_from_failed", "_selected_action": [order.pk], "confirm": "yes"},
    )
    order.refresh_from_db()
    assert order.run == 1


def test_support_sees_definitions_read_only(admin_client_for, support, blueprint):
    client = admin_client_for(support)
    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert "sm-json-editor" not in page.text
    assert "<svg" in page.text


def test_support_cannot_change_or_add_definitions(admin_client_for, support, blueprint):
    client = admin_client_for(support)
    api_call = ApiCall.objects.get(slug="payments.charge")
    assert client.get(reverse("admin:apicalls_apicall_add")).status_code == 403
    client.post(
        reverse("admin:apicalls_apicall_change", args=[api_call.pk]),
        {"slug": api_call.slug, "name": "hijacked", "definition": "{}"},
    )
    api_call.refresh_from_db()
    assert api_call.name != "hijacked"


def test_support_has_reprocess_cancel_and_edit_actions(admin_client_for, support, make_orders):
    make_orders(1)
    page = admin_client_for(support).get(reverse(CHANGELIST))
    assert action_names(page) == {
        "reprocess_from_failed",
        "reprocess_from_start",
        "cancel_orders",
        "edit_orders",
    }


def test_support_reprocesses_orders(admin_client_for, support, make_orders):
    orders = make_orders(2)
    admin_client_for(support).post(
        reverse(CHANGELIST),
        {
            "action": "reprocess_from_failed",
            "_selected_action": [o.pk for o in orders],
            "confirm": "yes",
        },
    )
    assert Order.objects.filter(run=2, status=Order.Status.PENDING).count() == 2


def test_support_can_try_an_api_call_without_editing_it(admin_client_for, support, blueprint):
    api_call = ApiCall.objects.get(slug="shop.quote")
    page = admin_client_for(support).get(reverse("admin:apicalls_apicall_try", args=[api_call.pk]))
    assert page.status_code == 200


def test_integration_user_has_no_admin_access(admin_client_for, integration, make_orders):
    client = admin_client_for(integration)
    for url in (reverse("admin:index"), reverse(CHANGELIST)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_integration_user_cannot_log_in_to_the_admin(client, integration):
    response = client.post(
        reverse("admin:login"), {"username": integration.username, "password": "pw-for-tests"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
