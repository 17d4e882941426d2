"""The blueprint's "Dry run" page in the admin (added to the site by the orders layer)."""

import json

import pytest
from django.urls import reverse

from orders.models import Order
from tests.admin_fixtures import staff_in

pytestmark = pytest.mark.django_db

PAYLOAD = {"sku": "TEE", "qty": 2, "email": "ann@example.com"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    for name in ("SHOP_URL", "PAYMENTS_URL", "SHIPPING_URL", "MAIL_URL", "OPS_URL"):
        monkeypatch.setenv(f"STATE_MANAGER_SECRET_{name}", f"https://{name.lower()}.example")
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAYMENTS_TOKEN", "tok-s3cret")


def url(blueprint) -> str:
    return reverse("admin:blueprints_blueprint_dry_run", args=[blueprint.pk])


def post(client, blueprint, payload, responses):
    return client.post(
        url(blueprint), {"payload": json.dumps(payload), "responses": json.dumps(responses)}
    )


def test_the_blueprint_page_links_to_its_dry_run(admin_client_for, editor, blueprint):
    client = admin_client_for(editor)

    page = client.get(reverse("admin:blueprints_blueprint_change", args=[blueprint.pk]))

    assert f'href="{url(blueprint)}"' in page.content.decode()


def test_the_form_lists_the_steps_that_send_a_request(admin_client_for, editor, blueprint):
    page = admin_client_for(editor).get(url(blueprint))

    assert page.status_code == 200
    steps = page.context["call_steps"]
    assert ("fulfil.ship", "shipping.create") in steps and ("charge", "payments.charge") in steps
    assert page.context["form"]["payload"].value() == "{}"


def test_a_dry_run_shows_the_failure_branch_and_where_it_ends(admin_client_for, editor, blueprint):
    responses = {"validate": {"body": {"total": 50}}, "charge": {"status": 402}}

    page = post(admin_client_for(editor), blueprint, PAYLOAD, responses)

    assert page.status_code == 200
    result = page.context["result"]
    assert [visit.step for visit in result.steps] == ["validate", "route", "charge", "reject"]
    html = page.content.decode()
    assert 'class="sm-dry-end sm-dry-end-failed"' in html
    assert "order could not be charged" in html
    assert "tok-s3cret" not in html and "payments_url.example" not in html
    assert not Order.objects.exists()


def test_a_bad_payload_and_a_bad_sample_are_shown_at_their_fields(
    admin_client_for, editor, blueprint
):
    page = post(admin_client_for(editor), blueprint, {"qty": 1}, {"charge": {"status": 1}})

    form = page.context["form"]
    assert "payload: 'sku' is a required property" in form.errors["payload"]
    assert (
        "responses.charge.status: must be an HTTP status from 100 to 599"
        in (form.errors["responses"])
    )
    assert page.context["result"] is None


def test_support_may_dry_run(admin_client_for, support, blueprint):
    assert admin_client_for(support).get(url(blueprint)).status_code == 200


def test_staff_without_blueprint_permissions_may_not(admin_client_for, blueprint):
    client = admin_client_for(staff_in(None))

    assert client.get(url(blueprint)).status_code == 403
