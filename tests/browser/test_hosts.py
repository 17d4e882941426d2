"""Outbound hosts in a real browser, as support: the list with a paused host and an open
circuit breaker, a host's page with its banners, closing the breaker by hand, and the
dashboard's paused hosts and open breakers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host
from hosts.services import host_pause
from tests.browser.conftest import support_granted
from tests.hosts.conftest import held_order
from tests.statemanager.fixtures import shop  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def support_with_hosts():
    return support_granted("statemanager.migrations.0003_host_roles", "grant_hosts")


def test_support_sees_paused_hosts_and_open_breakers_and_closes_one(page, shop):  # noqa: F811
    partner = Host.objects.create(host="api.partner.example", rate_per_second=5, max_concurrent=3)
    host_pause(host=partner, actor="ann")
    down = Host.objects.create(host="payments.partner.example", max_concurrent=10)
    Host.objects.filter(pk=down.pk).update(
        breaker_state="open",
        breaker_since=timezone.now() - timedelta(minutes=4),
        breaker_failure_rate=0.8,
    )
    Host.objects.create(host="mail.partner.example", rate_per_second=0.5)
    for number in range(3):
        held_order(f"P-{number}", partner.host, "paused")
    for number in range(2):
        held_order(f"B-{number}", down.host, "breaker")
    page.log_in(support_with_hosts())

    page.open("/admin/hosts/host/")
    rows = page.find("#result_list").text
    assert "api.partner.example" in rows and "by ann" in rows and "80%" in rows
    assert page.find(".sm-breaker-open").value_of_css_property("background-color") == (
        "rgba(185, 28, 28, 1)"
    )
    page.screenshot("14-hosts-list")

    page.open(f"/admin/hosts/host/{partner.pk}/change/")
    assert "Paused since" in page.find("#host-paused").text
    assert "3 waiting for this host" in page.find(".field-held").text
    page.screenshot("14-hosts-paused")

    page.open(f"/admin/hosts/host/{down.pk}/change/")
    assert "80% of the recent calls" in page.find("#host-breaker").text
    page.screenshot("14-hosts-breaker-open")
    page.find("#close-breaker-button").click()
    assert "Circuit breaker closed: payments.partner.example." in page.find(".messagelist").text
    assert not page.find_all("#host-breaker")
    assert Host.objects.get(pk=down.pk).breaker_state == "closed"

    Host.objects.filter(pk=down.pk).update(breaker_state="half_open", breaker_failure_rate=0.8)
    page.open("/admin/")
    assert "api.partner.example" in page.find("#dashboard-paused-hosts").text
    breakers = page.find("#dashboard-breakers").text
    assert "payments.partner.example" in breakers and "2" in breakers
    page.screenshot("14-hosts-dashboard")
