"""The dashboard on the admin index: status counts, backlog, last batch, failing steps."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import BatchRun, Order

pytestmark = pytest.mark.django_db


def test_dashboard_counts_orders_by_status_with_links(admin_client_for, support, make_orders):
    make_orders(2)
    make_orders(1, status=Order.Status.COMPLETED)
    page = admin_client_for(support).get(reverse("admin:index"))
    rows = {row["status"]: row for row in page.context["status_counts"]}
    assert (rows["failed"]["count"], rows["completed"]["count"], rows["pending"]["count"]) == (
        2,
        1,
        0,
    )
    assert rows["failed"]["url"] == "/admin/orders/order/?status__exact=failed"
    assert rows["failed"]["url"].replace("&", "&amp;") in page.text


def test_dashboard_due_backlog_links_to_the_due_orders(admin_client_for, support, make_orders):
    due = make_orders(3, status=Order.Status.PENDING)
    client = admin_client_for(support)
    page = client.get(reverse("admin:index"))
    assert page.context["due_count"] == 3
    listed = client.get(page.context["due_url"])
    assert set(listed.context["cl"].result_list) == set(due)


def test_dashboard_shows_the_last_batch(admin_client_for, support, db):
    started = timezone.now() - timedelta(minutes=2)
    BatchRun.objects.create(started_at=started, ended_at=started + timedelta(seconds=3), orders=7)
    page = admin_client_for(support).get(reverse("admin:index"))
    assert page.context["last_batch"].orders == 7
    assert page.context["last_batch_seconds"] == 3
    assert "Took 3.0 s" in page.text


def test_dashboard_lists_the_failing_steps_with_links(admin_client_for, support, make_orders):
    make_orders(2)
    client = admin_client_for(support)
    page = client.get(reverse("admin:index"))
    (row,) = page.context["failed_steps"]
    assert (row["step"], row["count"]) == ("charge", 2)
    listed = client.get(row["url"])
    assert len(listed.context["cl"].result_list) == 2


def test_dashboard_is_not_shown_to_those_who_cannot_see_orders(admin_client_for, db):
    from tests.admin.conftest import staff_in

    page = admin_client_for(staff_in(None)).get(reverse("admin:index"))
    assert "status_counts" not in page.context
