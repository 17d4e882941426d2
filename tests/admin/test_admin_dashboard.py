"""The dashboard on the admin index: status counts, backlog, last batch, failing steps."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.claims import claim_due_orders
from orders.models import BatchLane, BatchRun, Order, StepLog

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


def test_the_due_list_the_dashboard_and_health_agree_with_what_a_batch_claims(
    admin_client_for, support, make_orders
):
    now, minute, hour = timezone.now(), timedelta(minutes=1), timedelta(hours=1)
    states = {
        "pending, due": (Order.Status.PENDING, {"due_at": now - minute}),
        "pending, later": (Order.Status.PENDING, {"due_at": now + hour}),
        "pending, never": (Order.Status.PENDING, {"due_at": None}),
        "waiting, due": (Order.Status.WAITING, {"due_at": now - minute}),
        "waiting, later": (Order.Status.WAITING, {"due_at": now + hour}),
        "running, lease ran out": (
            Order.Status.RUNNING,
            {"due_at": now - hour, "lease_expires_at": now - minute},
        ),
        "running, lease live": (
            Order.Status.RUNNING,
            {"due_at": now - hour, "lease_expires_at": now + hour},
        ),
        "completed": (Order.Status.COMPLETED, {}),
        "failed": (Order.Status.FAILED, {}),
        "cancelled": (Order.Status.CANCELLED, {}),
    }
    for status, fields in states.values():
        (order,) = make_orders(1, status=status)
        Order.objects.filter(pk=order.pk).update(**fields)
    client = admin_client_for(support)

    dashboard = client.get(reverse("admin:index")).context
    listed = {order.pk for order in client.get(dashboard["due_url"]).context["cl"].result_list}
    health = client.get("/health/").json()
    claimed = claim_due_orders(limit=100, lease_seconds=60)

    assert len(claimed) == 3  # pending due, waiting due, running whose lease ran out
    assert listed == {claim.order_pk for claim in claimed}
    assert dashboard["due_count"] == health["due"] == len(claimed)


def test_dashboard_shows_the_last_batch(admin_client_for, support, db):
    started = timezone.now() - timedelta(minutes=2)
    BatchRun.objects.create(started_at=started, ended_at=started + timedelta(seconds=3), orders=7)
    page = admin_client_for(support).get(reverse("admin:index"))
    assert page.context["last_batch"].orders == 7
    assert page.context["last_batch_seconds"] == 3
    assert "Took 3.0 s" in page.text


def test_dashboard_shows_the_lanes_running_now_and_steps_per_minute(
    admin_client_for, support, make_orders
):
    now = timezone.now()
    BatchLane.objects.create(
        number=1,
        holder="worker-7:311:0badc0de",
        lease_expires_at=now + timedelta(seconds=40),
        turn_started_at=now - timedelta(seconds=5),
        turn_orders=42,
    )
    BatchLane.objects.create(number=2)  # idle: not shown
    make_orders(3)  # each with a log of finished attempts just now

    page = admin_client_for(support).get(reverse("admin:index"))

    assert [lane.number for lane in page.context["lanes"]] == [1]
    assert "<td>worker-7:311</td>" in page.text and ">42</td>" in page.text
    chart = page.context["steps_chart"]
    assert len(chart["bars"]) == 15 and chart["peak"] == sum(b["count"] for b in chart["bars"])
    assert chart["peak"] > 0 and 'id="dashboard-steps"' in page.text


def test_dashboard_says_when_no_lane_runs(admin_client_for, support, db):
    page = admin_client_for(support).get(reverse("admin:index"))
    assert "No lane is running" in page.text


def test_dashboard_lists_the_failing_steps_with_links(admin_client_for, support, make_orders):
    make_orders(2)
    client = admin_client_for(support)
    page = client.get(reverse("admin:index"))
    (row,) = page.context["failed_steps"]
    assert (row["step"], row["count"]) == ("charge", 2)
    listed = client.get(row["url"])
    assert len(listed.context["cl"].result_list) == 2


def test_a_failing_step_lists_the_orders_whose_failures_it_counts(
    admin_client_for, support, make_orders
):
    (counted,) = make_orders(1)  # a failed attempt at charge
    (callback_only,) = make_orders(1, status=Order.Status.PENDING, log=False)
    StepLog.objects.create(
        order=callback_only, run=1, step="charge", kind="callback", outcome="failed"
    )
    (long_ago,) = make_orders(1, log=False)
    StepLog.objects.create(
        order=long_ago,
        run=1,
        step="charge",
        outcome="failed",
        started_at=timezone.now() - timedelta(days=2),
    )
    client = admin_client_for(support)

    (row,) = client.get(reverse("admin:index")).context["failed_steps"]
    listed = client.get(row["url"]).context["cl"].result_list

    assert (row["step"], row["count"]) == ("charge", 1)
    assert list(listed) == [counted]


def test_dashboard_is_not_shown_to_those_who_cannot_see_orders(admin_client_for, db):
    from tests.admin.conftest import staff_in

    page = admin_client_for(staff_in(None)).get(reverse("admin:index"))
    assert "status_counts" not in page.context


def test_dashboard_counts_stop_at_the_cap(admin_client_for, support, make_orders, monkeypatch):
    from orders import selectors

    make_orders(3)
    make_orders(3, status=Order.Status.PENDING)
    make_orders(1, status=Order.Status.COMPLETED)
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)

    page = admin_client_for(support).get(reverse("admin:index"))

    rows = {row["status"]: row for row in page.context["status_counts"]}
    assert (rows["failed"]["shown"], rows["pending"]["shown"]) == ("2+", "2+")
    assert (rows["completed"]["shown"], rows["running"]["shown"]) == ("1", "0")
    assert (page.context["due_count"], page.context["due_shown"]) == (2, "2+")
    assert page.context["orders_total_shown"] == "7"  # a small table is counted exactly
    assert '<a href="/admin/orders/order/?due=now">2+</a>' in page.text


def test_dashboard_shows_how_long_the_oldest_due_order_has_waited(
    admin_client_for, support, make_orders
):
    (order,) = make_orders(1, status=Order.Status.PENDING)
    Order.objects.filter(pk=order.pk).update(due_at=timezone.now() - timedelta(hours=3))

    page = admin_client_for(support).get(reverse("admin:index"))

    assert "the oldest due for 3\xa0hours" in page.text
