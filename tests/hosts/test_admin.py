"""Outbound hosts in the admin: the list with pause and breaker state, the actions and the
buttons that pause, resume and close a breaker, the change page, and who may do what."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from hosts.models import Host
from hosts.services import host_pause
from tests.admin_fixtures import staff_in
from tests.hosts.conftest import held_order

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:hosts_host_changelist"


def change_url(host: Host) -> str:
    return reverse("admin:hosts_host_change", args=[host.pk])


def act(client, action: str, host: Host, **extra):
    data = {"action": action, "_selected_action": [host.pk], "index": 0, **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_the_list_shows_limits_pause_and_a_coloured_breaker(
    admin_client_for, support, partner, tripped
):
    host_pause(host=partner, actor="ann")
    half = Host.objects.create(host="half.example", max_concurrent=1)
    Host.objects.filter(pk=half.pk).update(breaker_state="half_open", breaker_failure_rate=0.5)

    page = admin_client_for(support).get(reverse(CHANGELIST))

    assert page.status_code == 200
    assert "5/s" in page.text and "no limit" in page.text
    assert 'sm-badge sm-host-paused">paused</span> by ann' in page.text
    assert '<span class="sm-badge sm-breaker-open">Open</span>' in page.text
    assert '<span class="sm-badge sm-breaker-half_open">half open</span>' in page.text
    assert '<span class="sm-breaker-closed">closed</span>' in page.text
    assert "75%" in page.text and "50%" in page.text


def test_the_list_filters_paused_hosts_and_open_breakers(
    admin_client_for, support, partner, tripped
):
    host_pause(host=partner, actor="ann")
    client = admin_client_for(support)

    def listed(query: str) -> list[str]:
        page = client.get(f"{reverse(CHANGELIST)}?{query}")
        return [host.host for host in page.context["cl"].result_list]

    assert listed("paused=yes") == ["api.partner.example"]
    assert listed("paused=no") == ["down.partner.example"]
    assert listed("breaker=open") == ["down.partner.example"]
    assert listed("breaker=closed") == ["api.partner.example"]


def test_support_pauses_resumes_and_closes_a_breaker_from_the_list(
    admin_client_for, support, partner, tripped
):
    client = admin_client_for(support)

    page = act(client, "pause_hosts", partner)
    partner.refresh_from_db()
    assert partner.paused and partner.paused_by == support.username
    assert "Paused: api.partner.example." in page.text

    act(client, "resume_hosts", partner)
    partner.refresh_from_db()
    assert not partner.paused

    page = act(client, "close_breakers", tripped)
    tripped.refresh_from_db()
    assert tripped.breaker_state == "closed"
    assert "Circuit breaker closed: down.partner.example." in page.text


def test_resuming_from_the_admin_makes_the_held_orders_due(
    admin_client_for, support, shop, partner
):
    host_pause(host=partner, actor="ann")
    order = held_order("A-1", partner.host)
    other = held_order("A-2", partner.host, kind="rate")

    act(admin_client_for(support), "resume_hosts", partner)

    order.refresh_from_db()
    other_due = other.due_at
    other.refresh_from_db()
    assert order.due_at <= timezone.now()
    assert other.due_at == other_due


def test_the_change_page_has_a_pause_button_then_a_banner_with_resume(
    admin_client_for, support, shop, partner
):
    client = admin_client_for(support)
    assert 'id="pause-button"' in client.get(change_url(partner)).text
    held_order("A-1", partner.host)

    page = act(client, "pause_hosts", partner, from_page="1")

    assert page.redirect_chain[-1][0] == change_url(partner)
    assert 'id="host-paused"' in page.text and 'id="resume-button"' in page.text
    assert f"by <strong>{support.username}</strong>" in page.text
    assert 'id="pause-button"' not in page.text
    assert "1 waiting</a> for this host" in page.text  # the orders held

    page = act(client, "resume_hosts", partner, from_page="1")
    assert 'id="host-paused"' not in page.text and 'id="pause-button"' in page.text


def test_the_change_page_shows_the_breaker_and_closes_it(admin_client_for, support, tripped):
    client = admin_client_for(support)
    page = client.get(change_url(tripped))

    assert 'id="host-breaker"' in page.text and "Circuit breaker open</strong> since" in page.text
    assert "75% of the recent calls" in page.text and "75%" in page.text
    assert "It opens when 50% or more of at least 20 calls in the last 60 s failed" in page.text

    page = act(client, "close_breakers", tripped, from_page="1")

    assert page.redirect_chain[-1][0] == change_url(tripped)
    assert 'id="host-breaker"' not in page.text
    assert '<span class="sm-breaker-closed">closed</span>' in page.text


def test_who_may_only_view_sees_no_actions_nor_buttons_and_cannot_pause(
    admin_client_for, partner, tripped
):
    viewer = staff_in(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_host"))
    client = admin_client_for(viewer)

    assert "pause_hosts" not in client.get(reverse(CHANGELIST)).text
    for host in (partner, tripped):
        page = client.get(change_url(host)).text
        assert 'id="pause-button"' not in page and 'id="close-breaker-button"' not in page
    act(client, "pause_hosts", partner)
    act(client, "close_breakers", tripped)
    partner.refresh_from_db()
    tripped.refresh_from_db()
    assert not partner.paused and tripped.breaker_state == "open"


def test_an_editor_adds_a_host_and_its_name_is_kept_in_lower_case(admin_client_for, editor):
    client = admin_client_for(editor)
    data = {"host": "API.Partner.example", "rate_per_second": "2.5", "max_concurrent": ""}

    page = client.post(reverse("admin:hosts_host_add"), data, follow=True)

    host = Host.objects.get()
    assert (host.host, host.rate_per_second, host.max_concurrent) == (
        "api.partner.example",
        2.5,
        None,
    )
    assert page.status_code == 200


@pytest.mark.parametrize(
    "data, field",
    [
        ({"host": "https://x.example/"}, "host"),
        ({"host": "API.partner.example"}, "host"),  # exists, in another case
        ({"host": "b.example", "rate_per_second": "0"}, "rate_per_second"),
        ({"host": "b.example", "rate_per_second": "1e308"}, "rate_per_second"),
        ({"host": "b.example", "rate_per_second": "nan"}, "rate_per_second"),
        ({"host": "b.example", "max_concurrent": "0"}, "max_concurrent"),
        ({"host": "b.example", "max_concurrent": "99999999999"}, "max_concurrent"),
    ],
)
def test_the_add_form_refuses_bad_values_at_their_field(
    admin_client_for, editor, partner, data, field
):
    page = admin_client_for(editor).post(reverse("admin:hosts_host_add"), data)

    assert page.status_code == 200
    assert field in page.context["adminform"].form.errors
    assert Host.objects.count() == 1


def test_editing_limits_keeps_a_pause_made_meanwhile(admin_client_for, editor, partner):
    client = admin_client_for(editor)
    client.get(change_url(partner))  # the form is read while the host runs
    host_pause(host=partner, actor="ann")

    client.post(change_url(partner), {"rate_per_second": "1", "max_concurrent": "2"})

    partner.refresh_from_db()
    assert (partner.rate_per_second, partner.max_concurrent) == (1.0, 2)
    assert partner.paused and partner.paused_by == "ann"


def test_the_host_name_cannot_be_changed_on_its_page(admin_client_for, editor, partner):
    client = admin_client_for(editor)
    data = {"host": "other.example", "rate_per_second": "1", "max_concurrent": ""}

    client.post(change_url(partner), data)

    partner.refresh_from_db()
    assert partner.host == "api.partner.example" and partner.rate_per_second == 1.0


def test_the_roles_may_do_with_hosts_what_they_should():
    def codenames(group: str) -> set[str]:
        permissions = Group.objects.get(name=group).permissions
        return set(permissions.filter(content_type__app_label="hosts").values_list("codename"))

    assert codenames("Support") == {("view_host",), ("pause_host",)}
    assert codenames("Blueprint editors") == {
        ("view_host",),
        ("add_host",),
        ("change_host",),
        ("pause_host",),
    }
    assert codenames("Integrations") == set()
