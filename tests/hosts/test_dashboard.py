"""The dashboard's and /health/'s paused hosts and open circuit breakers, with the orders
they hold."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.services import host_pause
from tests.hosts.conftest import held_order
from tests.hosts.test_admin import change_url

pytestmark = pytest.mark.django_db


def test_the_dashboard_lists_paused_hosts_and_open_breakers_with_their_held_orders(
    admin_client_for, support, shop, partner, tripped
):
    host_pause(host=partner, actor="ann")
    held_order("A-1", partner.host)
    held_order("A-2", partner.host)
    held_order("A-3", tripped.host, kind="breaker")

    page = admin_client_for(support).get(reverse("admin:index"))

    (paused,) = page.context["paused_hosts"]
    (breaker,) = page.context["open_breakers"]
    assert (paused["host"].host, paused["held_shown"]) == (partner.host, "2")
    assert (breaker["host"].host, breaker["held_shown"], breaker["failure_rate"]) == (
        tripped.host,
        "1",
        "75%",
    )
    assert 'id="dashboard-paused-hosts"' in page.text and 'id="dashboard-breakers"' in page.text
    assert f'href="{change_url(partner)}"' in page.text
    assert f'href="{change_url(tripped)}"' in page.text
    assert 'title="ann">ann</span>' in page.text
    assert '<span class="sm-badge sm-breaker-open">Open</span>' in page.text


def test_the_dashboard_leaves_the_hosts_out_when_none_holds_orders(
    admin_client_for, support, partner
):
    page = admin_client_for(support).get(reverse("admin:index"))

    assert page.context["paused_hosts"] == [] and page.context["open_breakers"] == []
    assert "Paused hosts" not in page.text and "Open circuit breakers" not in page.text


def test_health_lists_open_breakers_and_paused_hosts_and_stays_200(client, partner, tripped):
    host_pause(host=partner, actor="ann")

    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["paused_hosts"] == ["api.partner.example"]
    (breaker,) = body["breakers"]
    assert breaker["host"] == "down.partner.example"
    assert (breaker["state"], breaker["failure_rate"]) == ("open", 0.75)
    assert breaker["since"].startswith(tripped.breaker_since.strftime("%Y-%m-%dT%H:%M"))
    assert body["database"] == "ok" and "due" in body


def test_a_hosts_held_count_links_to_exactly_the_orders_it_holds(
    admin_client_for, support, shop, partner, tripped
):
    host_pause(host=partner, actor="ann")
    held_order("A-1", partner.host)
    held_order("A-2", partner.host)
    held_order("B-1", tripped.host, kind="breaker")
    client = admin_client_for(support)

    (paused,) = client.get(reverse("admin:index")).context["paused_hosts"]
    listed = client.get(paused["orders_url"])
    host_page = client.get(change_url(partner))

    assert sorted(order.order_id for order in listed.context["cl"].result_list) == ["A-1", "A-2"]
    assert "held by host" in listed.text
    assert f'href="{paused["orders_url"]}"' in host_page.text.replace("&amp;", "&")
