"""Details of the order pages: the site's front page is the admin, an order opens by its
order id, the header's attempts are the log's, a cancelled order's step is not waiting,
times to the second, and the dashboard reloads itself."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, StepLog
from orders.services import order_cancel

pytestmark = pytest.mark.django_db


def test_the_front_page_opens_the_admin(client):
    answer = client.get("/")

    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:index")


def test_an_order_opens_by_its_order_id(admin_client_for, support, make_orders):
    (order,) = make_orders(1)
    client = admin_client_for(support)

    page = client.get(f"/admin/orders/order/{order.order_id}/change/")

    assert page.status_code == 200
    assert page.context["original"].pk == order.pk
    assert client.get("/admin/orders/order/no-such-order/change/").status_code == 302


def test_the_headers_attempts_are_those_of_the_log(admin_client_for, support, make_orders):
    (order,) = make_orders(1)  # attempts 1 and 2 at charge failed with HTTP 502
    Order.objects.filter(pk=order.pk).update(failed_step="charge", current_step="reject", attempt=0)

    page = admin_client_for(support).get(reverse("admin:orders_order_change", args=[order.pk]))

    assert 'class="readonly">2 at charge</div>' in page.text


def test_a_cancelled_orders_waiting_step_says_cancelled(admin_client_for, support, make_orders):
    (order,) = make_orders(1, status=Order.Status.WAITING, log=False)
    StepLog.objects.create(
        order=order, run=1, step="charge", attempt=1, outcome="waiting", started_at=timezone.now()
    )
    order_cancel(order=order, actor="kim")

    page = admin_client_for(support).get(reverse("admin:orders_order_change", args=[order.pk]))

    (run,) = page.context["timeline_runs"]
    visit = run["items"][0]
    assert (visit.outcome, visit.outcome_label) == ("cancelled", "Cancelled")
    assert '<span class="sm-outcome">Waiting</span>' not in page.text


def test_times_are_shown_to_the_second_everywhere(admin_client_for, superuser, blueprint):
    page = admin_client_for(superuser).get(reverse("admin:apicalls_apicall_changelist"))

    updated = timezone.localtime(blueprint.updated_at).strftime("%Y-%m-%d")
    assert f'<td class="field-updated_at nowrap">{updated} ' in page.text
    assert "a.m." not in page.text and "p.m." not in page.text


def test_the_dashboard_reloads_itself(admin_client_for, support):
    page = admin_client_for(support).get(reverse("admin:index"))

    assert 'id="dashboard-live"' in page.text and 'data-refresh-seconds="15"' in page.text
    assert "statemanager/order-page.js" in page.text
