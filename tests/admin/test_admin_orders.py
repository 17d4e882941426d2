"""Orders in the admin: the list, the read-only order page, and the bulk actions."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, StepLog

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


def test_order_list_shows_the_columns(admin_client_for, superuser, make_orders):
    (order,) = make_orders(1)
    page = admin_client_for(superuser).get(reverse(CHANGELIST))
    assert page.status_code == 200
    for text in ("ORD-", "ecommerce-order", "sm-status-failed", "charge", "Attempt"):
        assert text in page.text
    assert page.context["cl"].result_count == 1


def test_order_list_filters_by_status(admin_client_for, superuser, make_orders):
    failed = make_orders(2)
    make_orders(3, status=Order.Status.COMPLETED)
    page = admin_client_for(superuser).get(reverse(CHANGELIST), {"status__exact": "failed"})
    assert set(page.context["cl"].result_list) == set(failed)


def test_order_list_filters_by_workflow(admin_client_for, superuser, make_orders):
    orders = make_orders(2)
    client = admin_client_for(superuser)
    page = client.get(reverse(CHANGELIST), {"workflow": "ecommerce-order"})
    other = client.get(reverse(CHANGELIST), {"workflow": "other"})
    assert set(page.context["cl"].result_list) == set(orders)
    assert list(other.context["cl"].result_list) == []


def test_order_list_searches_by_order_id(admin_client_for, superuser, make_orders):
    first, second = make_orders(2)
    page = admin_client_for(superuser).get(reverse(CHANGELIST), {"q": first.order_id})
    assert list(page.context["cl"].result_list) == [first]


def test_order_list_searches_by_order_id_prefix(admin_client_for, superuser, make_orders):
    orders = make_orders(2)
    page = admin_client_for(superuser).get(reverse(CHANGELIST), {"q": "ORD-"})
    assert set(page.context["cl"].result_list) == set(orders)


def test_order_list_filters_by_failed_step(admin_client_for, superuser, make_orders):
    failing = make_orders(1)
    make_orders(1, log=False)
    page = admin_client_for(superuser).get(reverse(CHANGELIST), {"failed_step": "charge"})
    assert list(page.context["cl"].result_list) == failing


def test_order_list_date_links_select_by_creation_time(admin_client_for, superuser, make_orders):
    recent, old = make_orders(2)
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    client = admin_client_for(superuser)
    changelist = client.get(reverse(CHANGELIST)).context["cl"]
    (dates,) = [spec for spec in changelist.filter_specs if spec.title == "created at"]
    (link,) = [
        c["query_string"] for c in dates.choices(changelist) if c["display"] == "Past 7 days"
    ]

    page = client.get(reverse(CHANGELIST) + link)

    assert list(page.context["cl"].result_list) == [recent]


def test_order_page_shows_input_data_error_diagram_and_timeline(
    admin_client_for, superuser, make_orders
):
    (order,) = make_orders(1)
    page = admin_client_for(superuser).get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200
    text = page.text
    assert "a@example.com" in text  # input
    assert "&quot;total&quot;: 10" in text  # saved data
    assert "HTTP 502" in text  # error
    assert 'class="sm-box current"' not in text
    assert 'data-step="charge"' in text and "current step" in text  # diagram
    assert text.count('class="sm-entry ') == 4  # timeline
    assert "Run 1 (current)" in text


def test_order_page_groups_the_timeline_by_run_with_who_reprocessed(
    admin_client_for, superuser, make_orders
):
    from orders.services import order_reprocess

    (order,) = make_orders(1)
    order_reprocess(order=order, start_from="failed", actor="alice")
    page = admin_client_for(superuser).get(reverse("admin:orders_order_change", args=[order.pk]))
    runs = page.context["timeline_runs"]
    assert [run["run"] for run in runs] == [1, 2]
    assert runs[1]["entries"][0].kind == StepLog.Kind.REPROCESS
    assert "alice" in page.text


def test_orders_cannot_be_added_or_edited(admin_client_for, superuser, make_orders):
    (order,) = make_orders(1)
    client = admin_client_for(superuser)
    assert client.get(reverse("admin:orders_order_add")).status_code == 403
    client.post(reverse("admin:orders_order_change", args=[order.pk]), {"status": "completed"})
    order.refresh_from_db()
    assert order.status == Order.Status.FAILED


def action_post(action: str, orders, **extra) -> dict:
    return {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in orders], **extra}


def test_reprocess_confirmation_counts_running_orders_as_untouched(
    admin_client_for, superuser, make_orders
):
    orders = make_orders(3) + make_orders(2, status=Order.Status.RUNNING)
    page = admin_client_for(superuser).post(
        reverse(CHANGELIST), action_post("reprocess_from_failed", orders, index="0")
    )
    assert page.status_code == 200
    assert (page.context["total"], page.context["touched"], page.context["untouched"]) == (
        5,
        3,
        2,
    )
    assert Order.objects.filter(status=Order.Status.PENDING).count() == 0


def test_reprocess_from_failed_on_confirmation_reports_counts(
    admin_client_for, superuser, make_orders
):
    orders = make_orders(3) + make_orders(1, status=Order.Status.RUNNING)
    response = admin_client_for(superuser).post(
        reverse(CHANGELIST),
        action_post("reprocess_from_failed", orders, confirm="yes", version="pinned"),
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("Reprocessing 3 order(s) from the failed step" in m for m in messages)
    assert any("1 skipped" in m for m in messages)
    assert Order.objects.filter(status=Order.Status.PENDING, run=2).count() == 3
    entry = StepLog.objects.filter(kind=StepLog.Kind.REPROCESS).first()
    assert entry.actor == superuser.username


def test_reprocess_from_start_on_latest_version(admin_client_for, superuser, make_orders):
    (order,) = make_orders(1)
    admin_client_for(superuser).post(
        reverse(CHANGELIST),
        action_post("reprocess_from_start", [order], confirm="yes", version="latest"),
    )
    order.refresh_from_db()
    assert (order.status, order.current_step, order.data) == ("pending", "validate", {})


def test_reprocess_all_matching_the_filter_touches_only_the_filtered_orders(
    admin_client_for, superuser, make_orders
):
    failed = make_orders(4)
    completed = make_orders(2, status=Order.Status.COMPLETED)
    url = reverse(CHANGELIST) + "?status__exact=failed"
    admin_client_for(superuser).post(
        url,
        action_post("reprocess_from_failed", failed[:1], select_across="1", confirm="yes"),
    )
    assert Order.objects.filter(pk__in=[o.pk for o in failed], run=2).count() == 4
    assert Order.objects.filter(pk__in=[o.pk for o in completed], run=1).count() == 2


def test_reprocess_from_failed_skips_completed_pending_and_waiting_orders(
    admin_client_for, superuser, make_orders
):
    failed = make_orders(2)
    others = [
        *make_orders(1, status=Order.Status.COMPLETED),
        *make_orders(1, status=Order.Status.PENDING),
        *make_orders(1, status=Order.Status.WAITING),
    ]
    client = admin_client_for(superuser)
    page = client.post(reverse(CHANGELIST), action_post("reprocess_from_failed", failed + others))
    assert (page.context["touched"], page.context["untouched"], page.context["completed"]) == (
        2,
        3,
        0,
    )
    assert "include_completed" not in page.text

    client.post(
        reverse(CHANGELIST),
        action_post(
            "reprocess_from_failed", failed + others, confirm="yes", include_completed="yes"
        ),
    )
    assert set(Order.objects.filter(run=2)) == set(failed)


def test_reprocess_from_start_asks_before_including_completed_orders(
    admin_client_for, superuser, make_orders
):
    failed = make_orders(1)
    completed = make_orders(2, status=Order.Status.COMPLETED)
    client = admin_client_for(superuser)
    page = client.post(reverse(CHANGELIST), action_post("reprocess_from_start", failed + completed))
    assert page.context["completed"] == 2
    assert 'name="include_completed"' in page.text
    assert "2</strong> of the selected orders are completed" in page.text

    client.post(
        reverse(CHANGELIST), action_post("reprocess_from_start", failed + completed, confirm="yes")
    )
    assert set(Order.objects.filter(run=2)) == set(failed)

    client.post(
        reverse(CHANGELIST),
        action_post(
            "reprocess_from_start", failed + completed, confirm="yes", include_completed="yes"
        ),
    )
    assert set(Order.objects.filter(run=2)) == set(failed + completed)


def test_cancel_confirmation_separates_running_and_finished_orders(
    admin_client_for, superuser, make_orders
):
    orders = (
        make_orders(2)
        + make_orders(1, status=Order.Status.RUNNING)
        + make_orders(3, status=Order.Status.COMPLETED)
    )
    page = admin_client_for(superuser).post(
        reverse(CHANGELIST), action_post("cancel_orders", orders, index="0")
    )
    context = page.context
    assert (context["total"], context["touched"], context["later"], context["untouched"]) == (
        6,
        2,
        1,
        3,
    )


def test_cancel_on_confirmation_reports_counts(admin_client_for, superuser, make_orders):
    orders = (
        make_orders(2)
        + make_orders(1, status=Order.Status.RUNNING)
        + make_orders(1, status=Order.Status.CANCELLED)
    )
    response = admin_client_for(superuser).post(
        reverse(CHANGELIST), action_post("cancel_orders", orders, confirm="yes"), follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("Cancelled 3 order(s)" in m and "1 skipped" in m for m in messages)
    assert Order.objects.filter(status=Order.Status.CANCELLED).count() == 3
    assert Order.objects.get(status=Order.Status.RUNNING).cancel_requested


def test_order_page_offers_reprocess_and_cancel_to_support(admin_client_for, support, make_orders):
    (order,) = make_orders(1)
    page = admin_client_for(support).get(reverse("admin:orders_order_change", args=[order.pk]))
    assert 'value="reprocess_from_failed"' in page.text
    assert 'value="cancel_orders"' in page.text
