"""Support's list of every host: the hosts the API calls' URLs name and those called in
the last day are listed whether or not an editor set limits on them, and support pauses
and resumes any of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from apicalls.services import api_call_save
from hosts.breaker import tally
from hosts.models import Host, SeenHost
from hosts.selectors import every_host
from tests.admin_fixtures import staff_in
from tests.hosts.conftest import held_order

pytestmark = pytest.mark.django_db

EVERY = "admin:hosts_host_every"


def api_call(slug: str, url: str) -> None:
    api_call_save(definition={"slug": slug, "name": slug, "method": "POST", "url": url})


@pytest.fixture
def calls(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_URL", "https://Pay.Example:8443/v2")
    api_call("pay.charge", "{{ secrets.PAY_URL }}/charges/{{ input.region }}")
    api_call("ship.create", "https://ship.example/shipments")
    api_call("geo.lookup", "https://{{ input.region }}.geo.example/v1")


def test_every_host_the_api_calls_name_is_listed_with_the_calls(calls):
    hosts, per_order = every_host()

    named = {known.host: known.api_calls for known in hosts}
    assert named == {"pay.example": ["pay.charge"], "ship.example": ["ship.create"]}
    assert per_order == ["geo.lookup"]


def test_hosts_called_in_the_last_day_are_listed_and_older_ones_not(calls):
    tally.add("eu.geo.example", failed=False)
    tally.flush()
    SeenHost.objects.create(host="old.example", last_seen_at=timezone.now() - timedelta(days=2))

    hosts, _ = every_host()

    seen = {known.host: known.last_seen_at for known in hosts}
    assert seen["eu.geo.example"] is not None
    assert "old.example" not in seen


def test_support_pauses_a_host_no_editor_added_and_resumes_it(
    calls, admin_client_for, support, shop
):
    client = admin_client_for(support)
    page = client.get(reverse(EVERY))
    assert page.status_code == 200
    assert "ship.example" in page.text and "pay.charge" in page.text

    paused = client.post(reverse(EVERY), {"host": "ship.example", "do": "pause"}, follow=True)

    host = Host.objects.get(host="ship.example")
    assert host.paused and host.paused_by == support.username
    assert (host.rate_per_second, host.max_concurrent) == (None, None)
    assert "Paused: ship.example" in paused.text
    held_order("held-1", "ship.example")
    assert "Resume" in client.get(reverse(EVERY)).text

    client.post(reverse(EVERY), {"host": "ship.example", "do": "resume"})

    assert not Host.objects.get(host="ship.example").paused


def test_who_may_not_pause_sees_the_list_without_buttons(calls, admin_client_for):
    viewer = staff_in(None)
    viewer.user_permissions.add(*_perms("view_host"))
    client = admin_client_for(viewer)

    assert 'value="pause"' not in client.get(reverse(EVERY)).text
    assert client.post(reverse(EVERY), {"host": "ship.example", "do": "pause"}).status_code == 403
    assert not Host.objects.filter(host="ship.example").exists()


def test_a_host_name_that_is_not_one_is_refused(admin_client_for, support):
    page = admin_client_for(support).post(
        reverse(EVERY), {"host": "https://x.example/", "do": "pause"}, follow=True
    )

    assert "Nothing done: host: give the host name only" in page.text
    assert not Host.objects.exists()


def test_the_hosts_list_links_to_every_host(admin_client_for, support):
    page = admin_client_for(support).get(reverse("admin:hosts_host_changelist"))

    assert reverse(EVERY) in page.text


def _perms(*codenames):
    return Permission.objects.filter(content_type__app_label="hosts", codename__in=codenames)
