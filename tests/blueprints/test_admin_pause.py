"""Pausing a blueprint in the admin: the list's actions, the page's button and banner,
and the dashboard's paused blueprints with the due orders they hold."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from blueprints.models import Blueprint
from blueprints.services import blueprint_pause, blueprint_save
from orders.claims import claim_due_orders
from orders.models import Order
from tests.admin_fixtures import *  # noqa: F403 (the admin's users, not the conftest's API clients)
from tests.admin_fixtures import staff_in
from tests.blueprints import definitions

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:blueprints_blueprint_changelist"


def act(client, action: str, blueprint: Blueprint, **extra):
    data = {"action": action, "_selected_action": [blueprint.pk], "index": 0, **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_support_pauses_and_resumes_from_the_blueprint_list(admin_client_for, support, blueprint):
    client = admin_client_for(support)

    page = act(client, "pause_blueprints", blueprint)

    blueprint.refresh_from_db()
    assert blueprint.paused and blueprint.paused_by == support.username
    assert f"Paused: {blueprint.slug}." in page.text
    assert 'class="sm-paused"' in page.text  # the list's "paused" column
    assert blueprint.version == 1 and blueprint.versions.count() == 1

    act(client, "resume_blueprints", blueprint)
    blueprint.refresh_from_db()
    assert not blueprint.paused and blueprint.paused_by == ""


def test_the_blueprint_page_has_a_pause_button_and_then_a_banner(
    admin_client_for, support, blueprint
):
    client = admin_client_for(support)
    url = reverse("admin:blueprints_blueprint_change", args=[blueprint.pk])
    assert 'id="pause-button"' in client.get(url).text

    page = act(client, "pause_blueprints", blueprint, from_page="1")

    assert page.redirect_chain[-1][0] == url
    assert 'id="blueprint-paused"' in page.text and 'id="resume-button"' in page.text
    assert f"by <strong>{support.username}</strong>" in page.text
    assert 'id="pause-button"' not in page.text


def test_only_those_with_the_pause_permission_see_and_may_use_it(admin_client_for, blueprint):
    viewer = staff_in(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_blueprint"))
    client = admin_client_for(viewer)

    assert "pause_blueprints" not in client.get(reverse(CHANGELIST)).text
    url = reverse("admin:blueprints_blueprint_change", args=[blueprint.pk])
    assert 'id="pause-button"' not in client.get(url).text
    act(client, "pause_blueprints", blueprint)
    blueprint.refresh_from_db()
    assert not blueprint.paused


def test_the_dashboard_lists_paused_blueprints_since_when_by_whom_and_what_they_hold(
    admin_client_for, support, make_orders, blueprint
):
    make_orders(2, status=Order.Status.PENDING)
    make_orders(1, status=Order.Status.COMPLETED)
    blueprint_pause(blueprint=blueprint, actor="ann")

    page = admin_client_for(support).get(reverse("admin:index"))

    (row,) = page.context["paused_blueprints"]
    assert (row["blueprint"].slug, row["blueprint"].paused_by, row["held"]) == (
        blueprint.slug,
        "ann",
        2,
    )
    assert page.context["held_count"] == 2
    assert 'id="dashboard-paused"' in page.text and 'title="ann">ann</span>' in page.text
    assert (
        blueprint.paused_at.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d %H:%M")
        in page.text
    )
    assert "2 held</span> by paused blueprints" in page.text


def test_the_due_list_the_dashboard_and_health_agree_with_a_claim_that_holds_paused_orders(
    admin_client_for, support, make_orders, blueprint
):
    """Due orders of a paused blueprint are due but held: the due list, the dashboard's
    and /health/'s due count hold them, a batch's claim leaves them out."""
    other = definitions.document()["blueprints"][0] | {"slug": "other-shop"}
    blueprint_save(definition=other)
    now, minute, hour = timezone.now(), timedelta(minutes=1), timedelta(hours=1)
    states = [
        (Order.Status.PENDING, {"due_at": now - minute}),
        (Order.Status.PENDING, {"due_at": now + hour}),
        (Order.Status.WAITING, {"due_at": now - minute}),
        (Order.Status.RUNNING, {"due_at": now - hour, "lease_expires_at": now - minute}),
        (Order.Status.RUNNING, {"due_at": now - hour, "lease_expires_at": now + hour}),
    ]
    for workflow in (blueprint.slug, "other-shop"):
        for status, fields in states:
            (order,) = make_orders(1, status=status)
            Order.objects.filter(pk=order.pk).update(workflow=workflow, **fields)
    blueprint_pause(blueprint=blueprint, actor="ann")
    client = admin_client_for(support)

    dashboard = client.get(reverse("admin:index")).context
    listed = {order.pk for order in client.get(dashboard["due_url"]).context["cl"].result_list}
    health = client.get("/health/").json()
    held = set(
        Order.objects.filter(pk__in=listed, workflow=blueprint.slug).values_list("pk", flat=True)
    )
    claimed = {claim.order_pk for claim in claim_due_orders(limit=100, lease_seconds=60)}

    assert len(claimed) == 3 and len(held) == 3  # pending due, waiting due, lease ran out
    assert listed == claimed | held and not claimed & held
    assert dashboard["due_count"] == health["due"] == 6
    assert dashboard["held_count"] == 3
    assert dashboard["due_count"] - dashboard["held_count"] == len(claimed)
