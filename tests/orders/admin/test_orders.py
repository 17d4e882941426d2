"""Orders in the admin: the list, the read-only order page, and the bulk actions."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from blueprints.models import WorkflowSnapshot
from blueprints.services import workflow_snapshot
from orders.claims import claim_due_orders
from orders.engine.runner import advance_order
from orders.models import BatchRun, Order, StepLog

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


def failed_at(orders, step: str, http_status: int | None = 502, **fields) -> None:
    """What the engine writes when a run takes the failure of `step`."""
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        failed_step=step, failed_http_status=http_status, **fields
    )


def listed(client, **filters) -> list:
    return list(client.get(reverse(CHANGELIST), filters).context["cl"].result_list)


def test_order_list_shows_why_each_order_failed(admin_client_for, support, make_orders):
    (order,) = make_orders(1)  # attempts 1 and 2 at charge failed with HTTP 502
    error = 'step "charge": HTTP 402 card declined\n{"reason": "insufficient funds"}'
    failed_at([order], "charge", http_status=402, current_step="reject", attempt=0, error=error)
    Order.objects.filter(pk=order.pk).update(
        created_at=timezone.make_aware(timezone.datetime(2026, 3, 4, 5, 6, 7))
    )

    page = admin_client_for(support).get(reverse(CHANGELIST))

    (row,) = page.context["cl"].result_list
    text = page.text
    assert 'field-failed_step_display"><span class="sm-clip" title="charge">charge<' in text
    assert 'field-current_step_name"><span class="sm-clip" title="reject">reject<' in text
    assert '<td class="field-http_status">402</td>' in text
    assert '<td class="field-attempts">2</td>' in text  # from the log, not `attempt` (0)
    assert '<td class="field-blueprint_version">v1</td>' in text
    assert '<td class="field-created"><span class="sm-date">2026-03-04</span><br>05:06:07' in text
    assert (
        '<span class="sm-clip-lines" title="step &quot;charge&quot;: HTTP 402 card declined\n'
        "{&quot;reason&quot;: &quot;insufficient funds&quot;}"
        '">step &quot;charge&quot;: HTTP 402 card declined</span>'
    ) in text


def test_order_list_offers_the_steps_that_can_fail_as_the_failed_step_filter(
    admin_client_for, support, make_orders
):
    make_orders(1)
    client = admin_client_for(support)

    def offered(**filters) -> list[str]:
        changelist = client.get(reverse(CHANGELIST), filters).context["cl"]
        specs = [spec for spec in changelist.filter_specs if spec.title == "failed step"]
        return [value for spec in specs for value, _ in spec.lookup_choices]

    # Calls and parallels, and choices (a `when` that breaks fails the order there).
    assert offered() == ["charge", "fulfil", "review", "route", "validate"]
    assert offered(workflow="no-such-blueprint") == []
    assert offered(workflow="no-such-blueprint", failed_step="gone") == ["gone"]


def test_order_list_filters_by_the_step_that_failed_not_by_the_log(
    admin_client_for, support, make_orders
):
    at_charge = make_orders(1, log=False)
    failed_at(at_charge, "charge")
    at_validate = make_orders(1)  # its log has failed attempts at charge
    failed_at(at_validate, "validate")
    make_orders(1)  # failed attempts at charge in its log, but no step to blame
    client = admin_client_for(support)

    assert listed(client, failed_step="charge") == at_charge
    assert listed(client, failed_step="validate") == at_validate


def test_an_order_failed_at_a_choice_step_is_offered_and_found_by_the_failed_step_filter(
    admin_client_for, support, blueprint
):
    # At the choice "route", whose `when` (data.total > 1000) breaks on a text total.
    order = Order.objects.create(
        order_id="ORD-CHOICE",
        workflow=blueprint.slug,
        snapshot=workflow_snapshot(blueprint=blueprint),
        payload={"sku": "ABC", "qty": 1, "email": "a@example.com"},
        data={"total": "a lot"},
        current_step="route",
    )
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)
    advance_order(claim.order_pk, claim.token)  # in this test's transaction, not a batch's
    order.refresh_from_db()
    assert (order.status, order.failed_step) == (Order.Status.FAILED, "route")
    client = admin_client_for(support)

    changelist = client.get(reverse(CHANGELIST), {"workflow": blueprint.slug}).context["cl"]

    (spec,) = [spec for spec in changelist.filter_specs if spec.title == "failed step"]
    assert "route" in [value for value, _ in spec.lookup_choices]  # offered unasked
    assert listed(client, workflow=blueprint.slug, failed_step="route") == [order]


def test_order_list_filters_by_error_http_status_and_blueprint_version(
    admin_client_for, support, make_orders
):
    declined, gateway, timeout = make_orders(3)
    failed_at([declined], "charge", http_status=402, error='step "charge": HTTP 402 Declined')
    failed_at([gateway], "charge", http_status=502)
    failed_at([timeout], "validate", http_status=None, error='step "validate": timed out')
    newer = WorkflowSnapshot.objects.create(
        workflow="ecommerce-order", blueprint_version=2, digest="f" * 64, definition={}
    )
    Order.objects.filter(pk=timeout.pk).update(snapshot=newer)
    client = admin_client_for(support)

    assert listed(client, error="declined") == [declined]
    assert set(listed(client, error="HTTP")) == {declined, gateway}
    assert listed(client, http_status="502") == [gateway]
    assert listed(client, http_status="4xx") == [declined]
    assert set(listed(client, http_status="5xx", error="step")) == {gateway}
    assert listed(client, blueprint_version="2") == [timeout]
    assert set(listed(client, blueprint_version="1")) == {declined, gateway}


@pytest.mark.parametrize(
    "filters",
    [{"http_status": "5x"}, {"http_status": "600"}, {"blueprint_version": "v2"}, {"batch": "x"}],
)
def test_order_list_with_a_filter_value_that_does_not_parse_is_a_bad_lookup(
    admin_client_for, support, make_orders, filters
):
    make_orders(1)
    response = admin_client_for(support).get(reverse(CHANGELIST), filters)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_the_text_filters_keep_the_lists_other_filters(admin_client_for, support, make_orders):
    make_orders(1)
    page = admin_client_for(support).get(
        reverse(CHANGELIST), {"status__exact": "failed", "error": "HTTP"}
    )
    form = page.text.split('id="filter-http_status"')[1].split("</form>")[0]
    assert '<input type="hidden" name="status__exact" value="failed">' in form
    assert '<input type="hidden" name="error" value="HTTP">' in form
    assert 'name="http_status" value=""' in form


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


def test_order_page_says_a_cancel_was_requested_only_while_it_is_pending(
    admin_client_for, support, make_orders
):
    (running,) = make_orders(1, status=Order.Status.RUNNING)
    (finished,) = make_orders(1, status=Order.Status.CANCELLED)
    Order.objects.update(cancel_requested=True)
    client = admin_client_for(support)

    def page(order):
        return client.get(reverse("admin:orders_order_change", args=[order.pk])).text

    assert "Yes: the order stops when its current step ends" in page(running)
    assert "Cancel requested" not in page(finished)
    assert "field-cancel_request" not in page(finished)


def test_a_batch_links_to_the_orders_logged_while_it_ran(admin_client_for, support, make_orders):
    now = timezone.now()
    batch = BatchRun.objects.create(
        started_at=now - timedelta(minutes=10), ended_at=now - timedelta(minutes=9), orders=1
    )
    advanced, before, after = make_orders(3, log=False)
    for order, minutes_ago in [(advanced, 9.5), (before, 11), (after, 8)]:
        StepLog.objects.create(
            order=order,
            run=1,
            step="validate",
            outcome="succeeded",
            started_at=now - timedelta(minutes=minutes_ago),
        )
    client = admin_client_for(support)

    batch_page = client.get(reverse("admin:orders_batchrun_change", args=[batch.pk]))
    link = f"/admin/orders/order/?batch={batch.pk}"
    assert f'href="{link}"' in batch_page.text
    page = client.get(link)
    assert list(page.context["cl"].result_list) == [advanced]
    assert f"#{batch.pk}, " in page.text  # the sidebar names the batch
    assert listed(client, batch=str(batch.pk + 1)) == []
