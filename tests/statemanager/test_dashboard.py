"""The dashboard on the admin index: status counts, the backlog and its oldest order, the
last batch, steps and failures per minute, and the failed orders by blueprint and step."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.claims import claim_due_orders
from orders.models import BatchLane, BatchRun, Order, StepLog
from tests.admin_fixtures import *  # noqa: F403 (the admin's users, not the conftest's API clients)

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


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


def test_the_due_list_and_health_count_orders_a_concurrency_key_holds_which_a_claim_leaves(
    admin_client_for, support, make_orders
):
    """A due order whose key a running order holds is due but held, like a paused one."""
    now, hour = timezone.now(), timedelta(hours=1)
    holder, held, other_key, no_key = make_orders(4, status=Order.Status.PENDING)
    for order, key in ((holder, "c1"), (held, "c1"), (other_key, "c2")):
        Order.objects.filter(pk=order.pk).update(concurrency_key=key)
    Order.objects.filter(pk=holder.pk).update(
        status=Order.Status.RUNNING, lease_expires_at=now + hour
    )
    client = admin_client_for(support)

    dashboard = client.get(reverse("admin:index")).context
    listed = {order.pk for order in client.get(dashboard["due_url"]).context["cl"].result_list}
    health = client.get("/health/").json()
    claimed = {claim.order_pk for claim in claim_due_orders(limit=100, lease_seconds=60)}

    assert claimed == {other_key.pk, no_key.pk}
    assert listed == claimed | {held.pk}
    assert dashboard["due_count"] == health["due"] == 3


def test_dashboard_shows_the_last_batch(admin_client_for, support, db):
    started = timezone.now() - timedelta(minutes=2)
    BatchRun.objects.create(started_at=started, ended_at=started + timedelta(seconds=3), orders=7)
    page = admin_client_for(support).get(reverse("admin:index"))
    assert page.context["last_batch"].orders == 7
    assert page.context["last_batch_seconds"] == 3
    assert "Took 3.0 s" in page.text


def test_dashboard_shows_the_lanes_running_now(admin_client_for, support, db):
    now = timezone.now()
    BatchLane.objects.create(
        number=1,
        holder="worker-7:311:0badc0de",
        lease_expires_at=now + timedelta(seconds=40),
        turn_started_at=now - timedelta(seconds=5),
        turn_orders=42,
    )
    BatchLane.objects.create(number=2)  # idle: not shown

    page = admin_client_for(support).get(reverse("admin:index"))

    assert [lane.number for lane in page.context["lanes"]] == [1]
    assert "<td>worker-7:311</td>" in page.text and ">42</td>" in page.text


def test_dashboard_charts_steps_and_failures_per_minute_over_six_hours(
    admin_client_for, support, make_orders
):
    orders = make_orders(3)  # each: 4 finished entries just now, 2 of them failures
    (earlier,) = make_orders(1, log=False)
    for minutes_ago, outcome in [(125, "succeeded"), (125, "retrying"), (7 * 60, "failed")]:
        StepLog.objects.create(
            order=earlier,
            run=1,
            step="charge",
            outcome=outcome,
            started_at=timezone.now() - timedelta(minutes=minutes_ago),
        )
    StepLog.objects.create(order=orders[0], run=2, kind="reprocess", outcome="requested")

    page = admin_client_for(support).get(reverse("admin:index"))

    chart = page.context["activity_chart"]
    bars = chart["bars"]
    assert (len(bars), chart["hours"], chart["bar_minutes"]) == (36, 6, 10)
    assert (bars[-1]["step_rate"], bars[-1]["failure_rate"]) == ("1.2", "0.6")
    two_hours_ago = [bar for bar in bars if bar["step_rate"] != "0.0"][0]
    assert (two_hours_ago["step_rate"], two_hours_ago["failure_rate"]) == ("0.2", "0.1")
    assert 120 <= two_hours_ago["minutes_ago"] <= 130
    assert sum(float(bar["failure_rate"]) for bar in bars) == pytest.approx(0.7)
    assert 'id="dashboard-activity"' in page.text and 'class="sm-chart-failures"' in page.text


def test_dashboard_says_when_no_lane_runs(admin_client_for, support, db):
    page = admin_client_for(support).get(reverse("admin:index"))
    assert "No lane is running" in page.text


def failed_at(orders, step: str, **fields) -> None:
    """What the engine writes when a run takes the failure of `step`."""
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        failed_step=step, failed_http_status=502, **fields
    )


def test_failures_count_orders_by_blueprint_and_step_not_attempts(
    admin_client_for, support, make_orders
):
    charge = make_orders(2)  # two failed attempts at charge each, then the end step
    for order in charge:
        StepLog.objects.create(order=order, run=1, step="reject", kind="step", outcome="failed")
    failed_at(charge, "charge", current_step="reject")
    validate = make_orders(1, log=False)
    failed_at(validate, "validate", current_step="reject")

    page = admin_client_for(support).get(reverse("admin:index"))

    rows = [(row["workflow"], row["step"], row["count"]) for row in page.context["failures"]]
    assert rows == [("ecommerce-order", "charge", 2), ("ecommerce-order", "validate", 1)]
    assert "reject" not in page.context["failures"][0]["url"]
    assert page.context["failures"][0]["url"].replace("&", "&amp;") in page.text


def test_each_failure_row_links_to_exactly_the_orders_it_counts(
    admin_client_for, support, make_orders
):
    failed_at(make_orders(3), "charge")
    failed_at(make_orders(2), "validate")
    other = make_orders(2)
    failed_at(other, "charge", workflow="returns")
    failed_at(make_orders(1, status=Order.Status.COMPLETED), "charge")  # took on_failed, recovered
    failed_at(make_orders(1, status=Order.Status.CANCELLED), "charge")  # support gave up
    failed_at(make_orders(1, status=Order.Status.PENDING), "charge")  # being reprocessed
    make_orders(2)  # failed with no step to blame (an end step reached by a choice)
    client = admin_client_for(support)

    failures = client.get(reverse("admin:index")).context["failures"]
    listed = {}
    for row in failures:
        changelist = client.get(row["url"]).context["cl"]
        listed[(row["workflow"], row["step"])] = set(changelist.result_list)
        assert changelist.result_count == len(changelist.result_list) == row["count"]

    assert {key: len(orders) for key, orders in listed.items()} == {
        ("ecommerce-order", "charge"): 3,
        ("ecommerce-order", "validate"): 2,
        ("returns", "charge"): 2,
    }
    everything = set().union(*listed.values())
    assert everything == set(Order.objects.filter(status="failed").exclude(failed_step=""))


def test_the_failed_step_filter_and_the_dashboard_agree_on_what_failed_at_a_step(
    admin_client_for, support, make_orders
):
    (counted,) = make_orders(1)
    failed_at([counted], "charge")
    (callback_only,) = make_orders(1, status=Order.Status.PENDING, log=False)
    StepLog.objects.create(
        order=callback_only, run=1, step="charge", kind="callback", outcome="failed"
    )
    (end_step_only,) = make_orders(1, log=False)
    StepLog.objects.create(order=end_step_only, run=1, step="charge", kind="step", outcome="failed")
    client = admin_client_for(support)

    (row,) = client.get(reverse("admin:index")).context["failures"]
    by_step = client.get(reverse(CHANGELIST), {"failed_step": "charge"}).context["cl"]
    by_row = client.get(row["url"]).context["cl"]

    assert (row["step"], row["count"]) == ("charge", 1)
    assert list(by_step.result_list) == list(by_row.result_list) == [counted]


def test_dashboard_is_not_shown_to_those_who_cannot_see_orders(admin_client_for, db):
    from tests.admin_fixtures import staff_in

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
    Order.objects.filter(pk=order.pk).update(
        due_at=timezone.now() - timedelta(hours=3, minutes=12, seconds=5)
    )

    page = admin_client_for(support).get(reverse("admin:index"))

    assert page.context["oldest_due_age"] == "3 h 12 min"
    assert "Oldest due for <strong>3 h 12 min</strong>" in page.text


def test_dashboard_shows_no_oldest_due_order_when_none_is_due(
    admin_client_for, support, make_orders
):
    make_orders(2)

    page = admin_client_for(support).get(reverse("admin:index"))

    assert page.context["oldest_due_age"] is None and "Oldest due for" not in page.text
