"""The bulk actions' confirmation names what it touches, and confirms a frozen job whose
page follows its progress."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django_q.brokers import get_broker

from orders import jobs
from orders.models import BulkJob, Order
from tests.admin_fixtures import staff_in

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


def ask(client, action: str, orders, url: str = "", **extra):
    """The action on the ticked `orders` (with select_across, on all the list matches)."""
    body = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in orders], **extra}
    return client.post(url or reverse(CHANGELIST), body)


def job_url(job: BulkJob) -> str:
    return reverse("admin:orders_order_job", args=[job.pk])


def test_the_confirmation_names_the_first_50_orders_with_status_and_version(
    admin_client_for, support, make_orders
):
    orders = make_orders(52, log=False) + make_orders(1, status=Order.Status.RUNNING, log=False)

    page = ask(admin_client_for(support), "reprocess_from_failed", orders)

    assert page.status_code == 200
    rows = re.findall(r"<tr><td><a href=[^>]*>(ORD-\d+)</a></td>", page.text)
    assert rows == [order.order_id for order in orders[:50]]
    assert "<td>v1</td>" in page.text
    assert "… and 3 more." in page.text
    assert page.context["shown"][0]["fate"] == "reprocessed"
    assert (page.context["total"], page.context["touched"], page.context["untouched"]) == (
        53,
        52,
        1,
    )


def test_the_confirmation_counts_each_status_with_what_the_job_does_to_it(
    admin_client_for, support, make_orders
):
    orders = (
        make_orders(2)
        + make_orders(1, status=Order.Status.RUNNING)
        + make_orders(3, status=Order.Status.COMPLETED)
        + make_orders(1, status=Order.Status.WAITING)
    )

    page = ask(admin_client_for(support), "reprocess_from_start", orders)

    by_status = {
        re.search(r">(\w+)</span>", row["badge"]).group(1): (row["count"], row["fate"])
        for row in page.context["by_status"]
    }
    assert by_status == {
        "failed": (2, "reprocessed"),
        "running": (1, "skipped: running"),
        "completed": (3, "only if you include completed orders"),
        "waiting": (1, "skipped: cancel it first"),
    }
    assert page.context["completed"] == 3


def test_confirming_acts_on_the_frozen_selection_not_on_what_matches_now(
    admin_client_for, support, make_orders
):
    ticked = make_orders(3)[:1]  # the page's rows are ticked, and "all 3" chosen
    client = admin_client_for(support)
    url = reverse(CHANGELIST) + "?status__exact=failed"
    page = ask(client, "reprocess_from_failed", ticked, url=url, select_across="1")
    job = page.context["job"]
    assert page.context["total"] == 3
    later = make_orders(2)  # they match the filter too, once the page is shown

    answer = client.post(job_url(job), {"version": "pinned"}, follow=True)

    messages = [str(m) for m in answer.context["messages"]]
    assert messages == [
        "Reprocessing 3 order(s) from the failed step on the pinned version; 0 skipped "
        "(not failed or cancelled, or the latest version lacks their step)."
    ]
    assert answer.redirect_chain == [(job_url(job), 302)]
    assert "all orders the list showed for status__exact=failed, frozen at" in answer.text
    assert Order.objects.filter(status=Order.Status.PENDING).count() == 3
    assert set(Order.objects.filter(status=Order.Status.FAILED)) == set(later)
    job.refresh_from_db()
    assert (job.status, job.done + job.skipped, job.selection["all_matching"]) == ("done", 3, True)


def test_the_version_and_include_completed_are_chosen_on_confirming(
    admin_client_for, support, make_orders
):
    failed = make_orders(1)
    completed = make_orders(1, status=Order.Status.COMPLETED)
    client = admin_client_for(support)
    job = ask(client, "reprocess_from_start", failed + completed).context["job"]

    client.post(job_url(job), {"version": "latest", "include_completed": "yes"})

    job.refresh_from_db()
    assert job.options["version"] == "latest" and job.options["include_completed"] is True
    assert Order.objects.filter(run=2).count() == 2


def test_no_discards_the_job_and_goes_back_to_the_filtered_list(
    admin_client_for, support, make_orders
):
    ticked = make_orders(2)[:1]
    client = admin_client_for(support)
    url = reverse(CHANGELIST) + "?status__exact=failed"
    job = ask(client, "cancel_orders", ticked, url=url, select_across="1").context["job"]

    answer = client.post(job_url(job), {"discard": "No, take me back"}, follow=True)

    assert answer.redirect_chain == [(url, 302)]
    assert [str(m) for m in answer.context["messages"]] == ["Nothing was changed."]
    job.refresh_from_db()
    assert job.status == BulkJob.Status.DISCARDED
    assert not job.entries.exists()
    assert Order.objects.filter(status=Order.Status.FAILED).count() == 2
    again = client.post(job_url(job), {}, follow=True)
    assert [str(m) for m in again.context["messages"]] == [
        "This job is discarded: it is not waiting for a confirmation."
    ]
    job.refresh_from_db()
    assert job.status == BulkJob.Status.DISCARDED


@pytest.fixture
def broker():
    """The project's django-q2 broker, emptied after a test that queues a job."""
    broker = get_broker()
    yield broker
    broker.purge_queue()


def test_a_large_job_runs_in_the_background_and_its_page_refreshes_until_done(
    admin_client_for, support, make_orders, monkeypatch, broker
):
    monkeypatch.setattr(jobs, "INLINE_LIMIT", 1)
    orders = make_orders(2) + make_orders(1, status=Order.Status.COMPLETED)
    client = admin_client_for(support)
    job = ask(client, "cancel_orders", orders).context["job"]

    answer = client.post(job_url(job), {}, follow=True)

    assert "Cancelling 3 order(s) in the background" in answer.text
    assert '<meta http-equiv="refresh" content="2">' in answer.text
    assert answer.context["processed"] == 0
    assert Order.objects.filter(status=Order.Status.FAILED).count() == 2

    jobs.job_run(BulkJob.objects.get(pk=job.pk))

    page = client.get(job_url(job))
    assert 'http-equiv="refresh"' not in page.text
    assert (page.context["processed"], page.context["percent"]) == (3, 100)
    assert re.search(r'id="job-done">2<', page.text)
    assert re.search(r'id="job-skipped">1 ', page.text)
    assert re.search(r'id="job-selection">the orders ticked on the list, ', page.text)


def test_the_page_of_a_job_asked_for_through_the_api_says_how_it_selected(
    admin_client_for, support, make_orders
):
    make_orders(1)
    job = jobs.job_prepare(
        kind=BulkJob.Kind.CANCEL,
        orders=Order.objects.all(),
        selection={"status": ["failed"], "workflow": "ecommerce-order"},
        actor="api-user",
    )
    jobs.job_start(job)

    page = admin_client_for(support).get(job_url(job))

    assert "status failed, workflow ecommerce-order, frozen at" in page.text
    assert "only they can confirm it" not in page.text


def test_the_job_page_shows_a_failed_jobs_error(admin_client_for, support, make_orders):
    make_orders(1)
    job = ask(admin_client_for(support), "cancel_orders", Order.objects.all()).context["job"]
    BulkJob.objects.filter(pk=job.pk).update(status="failed", error="OperationalError: gone")

    page = admin_client_for(support).get(job_url(job))

    assert "OperationalError: gone" in page.text


def test_only_who_prepared_a_job_may_confirm_it(admin_client_for, support, make_orders):
    orders = make_orders(1)
    job = ask(admin_client_for(support), "cancel_orders", orders).context["job"]
    colleague = admin_client_for(staff_in("Support"))

    page = colleague.get(job_url(job))
    assert page.status_code == 200 and "only they can confirm it" in page.text
    assert colleague.post(job_url(job), {}).status_code == 403
    assert Order.objects.get(pk=orders[0].pk).status == Order.Status.FAILED


def test_the_job_pages_need_the_reprocess_permission(
    admin_client_for, support, editor, make_orders
):
    job = ask(admin_client_for(support), "cancel_orders", make_orders(1)).context["job"]

    assert admin_client_for(editor).get(job_url(job)).status_code == 403
    unknown = reverse("admin:orders_order_job", args=[job.pk + 1000])
    assert admin_client_for(support).get(unknown).status_code == 404
