"""The order page: the failed step on the diagram and the end the flow reached, the data
before and after each step, a waiting callback resolved by hand, and the live reload."""

import re
from dataclasses import replace

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import Callback, Order, StepLog
from orders.services import order_reprocess
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


def page_of(client, order: Order):
    return client.get(reverse("admin:orders_order_change", args=[order.pk]))


def resolve_url(order: Order) -> str:
    return reverse("admin:orders_order_resolve_callback", args=[order.pk])


def box_classes(svg: str, step: str) -> str:
    return re.search(
        rf'data-step="{re.escape(step)}"><title>[^<]*</title><rect class="([^"]*)"', svg
    )[1]


# The diagram.


def test_the_failed_step_is_red_and_the_flow_ends_at_end_failed(
    admin_client_for, support, make_orders
):
    (order,) = make_orders(1)
    Order.objects.filter(pk=order.pk).update(failed_step="charge", current_step="reject")

    svg = page_of(admin_client_for(support), order).context["diagram"]

    assert "failed" in box_classes(svg, "charge").split()
    assert "✕ failed" in svg
    assert "failed" not in box_classes(svg, "validate").split()
    assert box_classes(svg, "(failed)") == "sm-box terminal end-failed reached"
    assert "reached" not in box_classes(svg, "(completed)")
    assert 'data-edge="reject-&gt;(failed)"' in svg  # the end step leads to its terminal


def test_a_failed_branch_marks_its_parallel_step(admin_client_for, support, make_orders):
    (order,) = make_orders(1)
    Order.objects.filter(pk=order.pk).update(failed_step="fulfil.ship", current_step="fulfil")

    svg = page_of(admin_client_for(support), order).context["diagram"]

    assert "failed" in box_classes(svg, "fulfil").split()
    assert re.search(
        r'data-step="fulfil.ship"><title>fulfil.ship</title><rect class="sm-box[^"]* failed"', svg
    )
    assert not re.search(
        r'data-step="fulfil.mail"><title>fulfil.mail</title><rect class="[^"]*failed', svg
    )
    # fulfil has no on_failed of its own: its failure ends the order.
    assert 'data-edge="fulfil-&gt;(failed)"' in svg


def test_a_completed_order_reaches_end_completed(admin_client_for, support, make_orders):
    (order,) = make_orders(1, status=Order.Status.COMPLETED)

    svg = page_of(admin_client_for(support), order).context["diagram"]

    assert box_classes(svg, "(completed)") == "sm-box terminal end-completed reached"
    assert "sm-box call taken failed" not in svg


# The data before and after each step.


@pytest.fixture
def failed_order(server):
    """quote saves the total, mail saves nothing, charge fails into `stop`."""
    server.route("POST", "/quote", Reply(200, {"total": 50}))
    server.route("POST", "/mail", Reply(200, {}))
    server.route("POST", "/charge", Reply(402, {"error": "declined"}))
    calls = [api_call(name, f"{server.url}/{name}") for name in ("quote", "mail", "charge")]
    calls[2]["save"] = {"charge_id": "{{ response.body.id }}"}
    steps = [
        {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
        {"id": "mail", "call": "mail"},
        {"id": "charge", "call": "charge", "on_failed": "stop", "end": "completed"},
        {"id": "stop", "end": "failed", "error": "not charged"},
    ]
    order = process(make_order(steps, calls))
    assert (order.status, order.failed_step) == (Order.Status.FAILED, "charge")
    return order


def visits(page, run: int = 1) -> dict[str, object]:
    (found,) = [entry for entry in page.context["timeline_runs"] if entry["run"] == run]
    return {item.step: item for item in found["items"] if getattr(item, "is_visit", False)}


def test_the_step_log_shows_the_data_before_and_after_each_step(
    admin_client_for, support, failed_order
):
    page = page_of(admin_client_for(support), failed_order)

    steps = visits(page)
    assert list(steps) == ["quote", "mail", "charge", "stop"]
    assert (steps["quote"].data_before, steps["quote"].data_after) == ({}, {"total": 50})
    assert (steps["mail"].data_before, steps["mail"].data_after) == ({"total": 50}, {"total": 50})
    assert steps["charge"].data_before == {"total": 50} and steps["charge"].failed_here
    text = page.text
    assert "Data before and after: saved <code>total</code>" in text
    assert text.count("Data before and after: nothing saved") == 3
    assert "the step that failed (HTTP 402)" in text
    assert text.count('class="sm-entry ') == 4  # the saved values are shown as data, not entries


def test_a_run_from_the_failed_step_starts_with_the_data_before_it(
    admin_client_for, support, server, failed_order
):
    server.route("POST", "/charge", Reply(200, {"id": "ch-1"}))
    order_reprocess(order=failed_order, start_from="failed", actor="ann")
    order = process(failed_order)
    assert order.status == Order.Status.COMPLETED, order.error

    page = page_of(admin_client_for(support), order)

    charge = visits(page, run=2)["charge"]
    assert (charge.data_before, charge.data_after) == (
        {"total": 50},
        {"total": 50, "charge_id": "ch-1"},
    )
    assert not charge.failed_here
    assert all(run["data_note"] == "" for run in page.context["timeline_runs"])


def test_a_log_that_cannot_tell_the_data_says_so_instead_of_guessing(
    admin_client_for, support, make_orders
):
    (order,) = make_orders(1)  # saved data, but no log entry saved it

    page = page_of(admin_client_for(support), order)

    assert "cannot be rebuilt from this order" in page.text
    assert "Data before and after:" not in page.text


def test_a_run_whose_first_entries_are_cut_off_says_its_data_is_not_known(
    admin_client_for, support, failed_order, monkeypatch
):
    monkeypatch.setattr("orders.admin.order_page.TIMELINE_LIMIT", 3)

    page = page_of(admin_client_for(support), failed_order)

    (run,) = page.context["timeline_runs"]
    assert "not known: older log entries are not shown" in run["data_note"]
    assert all(visit.data_before is None for visit in visits(page).values())


def test_a_value_too_long_to_log_is_shown_cut_and_the_rest_still_replays(
    admin_client_for, support, server, settings
):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, log_body_bytes=30)
    server.route("POST", "/a", Reply(200, {"text": "y" * 100, "n": 3}))
    save = {"text": "{{ response.body.text }}", "n": "{{ response.body.n }}"}
    order = process(
        make_order([{"id": "a", "call": "a", "save": save}], [api_call("a", server.url + "/a")])
    )

    page = page_of(admin_client_for(support), order)

    step = visits(page)["a"]
    assert step.data_after["n"] == 3 and "truncated" in step.data_after["text"]
    assert "(long values cut)" in page.text
    assert page.context["timeline_runs"][0]["data_note"] == ""


# A waiting callback.


@pytest.fixture
def waiting_order(server):
    server.route("POST", "/pay", Reply(202, {}))
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "wait_for_callback": {"timeout_seconds": 3600},
            "on_failed": "unpaid",
        },
        {"id": "unpaid", "end": "failed", "error": "payment not confirmed"},
    ]
    order = process(make_order(steps, [api_call("pay", server.url + "/pay")]))
    assert order.status == Order.Status.WAITING
    return order


def test_a_waiting_step_shows_its_callback_url_due_time_and_resolve_buttons(
    admin_client_for, support, waiting_order
):
    callback = Callback.objects.get(order=waiting_order)

    text = page_of(admin_client_for(support), waiting_order).text

    assert f"/api/callbacks/{callback.token}/</code>" in text
    assert callback.expires_at.strftime("%Y-%m-%d %H:%M:%S") in text
    assert f'action="{resolve_url(waiting_order)}"' in text
    assert 'name="reason" id="id_reason" required' in text
    assert '<button type="submit" name="outcome" value="success"' in text
    assert '<button type="submit" name="outcome" value="failure"' in text


def test_an_editor_sees_the_callback_but_cannot_resolve_it(admin_client_for, editor, waiting_order):
    client = admin_client_for(editor)

    assert "Callback URL" in page_of(client, waiting_order).text
    assert "Resolve as failure" not in page_of(client, waiting_order).text
    response = client.post(resolve_url(waiting_order), {"outcome": "failure", "reason": "x"})
    assert response.status_code == 403
    assert Callback.objects.get(order=waiting_order).status == Callback.Status.WAITING


def test_support_resolves_a_callback_as_failure_and_the_log_says_who_and_why(
    admin_client_for, support, waiting_order
):
    client = admin_client_for(support)

    response = client.post(
        resolve_url(waiting_order), {"outcome": "failure", "reason": "partner is down"}, follow=True
    )

    assert "The callback of step &quot;pay&quot; was resolved as a failure" in response.text
    assert Callback.objects.get(order=waiting_order).status == Callback.Status.FAILED
    entry = waiting_order.log.get(kind=StepLog.Kind.CALLBACK)
    assert (entry.actor, entry.request) == (support.username, {"reason": "partner is down"})
    assert f"resolved by hand by <strong>{support.username}</strong>" in response.text
    assert "Reason: partner is down" in response.text
    order = process(waiting_order)
    assert (order.status, order.error) == (Order.Status.FAILED, "payment not confirmed")


def test_resolving_without_a_reason_says_why_and_changes_nothing(
    admin_client_for, support, waiting_order
):
    response = admin_client_for(support).post(
        resolve_url(waiting_order), {"outcome": "success", "reason": " "}, follow=True
    )

    assert "The callback was not resolved: say why" in response.text
    assert Callback.objects.get(order=waiting_order).status == Callback.Status.WAITING


def test_resolving_with_data_that_is_not_json_is_refused(admin_client_for, support, waiting_order):
    response = admin_client_for(support).post(
        resolve_url(waiting_order),
        {"outcome": "success", "reason": "x", "data": "{amount"},
        follow=True,
    )

    assert "the data is not JSON" in response.text
    assert Callback.objects.get(order=waiting_order).status == Callback.Status.WAITING


def test_a_callback_no_longer_waiting_is_refused_with_a_clear_message(
    admin_client_for, support, waiting_order
):
    client = admin_client_for(support)
    client.post(resolve_url(waiting_order), {"outcome": "failure", "reason": "first"})

    response = client.post(
        resolve_url(waiting_order), {"outcome": "success", "reason": "again"}, follow=True
    )

    refusal = f"order {waiting_order.order_id} is not waiting for a callback"
    assert f"The callback was not resolved: {refusal}" in response.text
    assert waiting_order.log.filter(kind=StepLog.Kind.CALLBACK).count() == 1


def test_resolving_takes_a_post_with_its_csrf_token(support, waiting_order):
    client = Client(enforce_csrf_checks=True)
    client.force_login(support)

    assert client.get(resolve_url(waiting_order)).status_code == 405
    assert (
        client.post(resolve_url(waiting_order), {"outcome": "failure", "reason": "x"}).status_code
        == 403
    )
    assert Callback.objects.get(order=waiting_order).status == Callback.Status.WAITING


# The live reload.


@pytest.mark.parametrize(
    ("status", "live"),
    [
        (Order.Status.PENDING, True),
        (Order.Status.RUNNING, True),
        (Order.Status.WAITING, True),
        (Order.Status.COMPLETED, False),
        (Order.Status.FAILED, False),
        (Order.Status.CANCELLED, False),
    ],
)
def test_the_page_of_an_order_that_may_move_reloads_itself(
    admin_client_for, support, make_orders, status, live
):
    (order,) = make_orders(1, status=status)

    text = page_of(admin_client_for(support), order).text

    assert ('id="order-live"' in text) is live
    assert ("statemanager/order-page.js" in text) is live


def test_support_reprocesses_from_a_step_the_run_passed_through(
    admin_client_for, support, server, failed_order
):
    client = admin_client_for(support)
    page = page_of(client, failed_order)
    assert page.context["steps_passed"] == ["quote", "mail", "charge", "stop"]
    assert '<option value="charge" selected>charge</option>' in page.text

    url = reverse("admin:orders_order_reprocess_from_step", args=[failed_order.pk])
    asked = client.post(url, {"from_step": "mail"})
    assert asked.status_code == 200
    assert "Reprocess orders from step &quot;mail&quot;" in asked.text
    job_url = asked.context["job_url"]
    client.post(job_url, {"version": "pinned"})
    server.route("POST", "/charge", Reply(200, {"id": "ch-2"}))
    order = process(Order.objects.get(pk=failed_order.pk))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.run == 2
    assert order.data == {"total": 50, "charge_id": "ch-2"}
    assert len(server.requests_to("/quote")) == 1
    assert len(server.requests_to("/mail")) == 2
