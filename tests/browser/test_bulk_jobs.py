"""Support staff reprocess every failed order the list holds: the confirmation names what
it touches, and the job's page follows the progress of a job run in the background."""

import threading

import pytest
from django.db import connections
from django_q.brokers import get_broker
from selenium.webdriver.support.ui import Select, WebDriverWait

from orders import jobs
from orders.models import BulkJob, Order
from tests.admin_fixtures import staff_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker():
    """The project's django-q2 broker, emptied after the test's job was queued on it."""
    broker = get_broker()
    yield broker
    broker.purge_queue()


def test_support_confirms_a_frozen_selection_and_follows_its_job(
    page, make_orders, monkeypatch, broker
):
    make_orders(40, log=False)
    make_orders(6, status=Order.Status.RUNNING, log=False)
    make_orders(8, status=Order.Status.COMPLETED, log=False)
    make_orders(3, status=Order.Status.WAITING, log=False)
    monkeypatch.setattr(jobs, "INLINE_LIMIT", 10)  # so this job runs in the background
    monkeypatch.setattr(jobs, "CHUNK_SIZE", 20)
    page.log_in(staff_in("Support"))

    page.open("/admin/orders/order/")
    page.find("#action-toggle").click()
    page.find(".actions .question a").click()  # "Select all 57 orders"
    Select(page.find("select[name=action]")).select_by_value("reprocess_from_start")
    page.find("button[name=index]").click()

    assert page.find("#confirm-total").text == "Selected: 57 orders."
    assert page.find("#confirm-touched").text == "Will be reprocessed: 40."
    assert (
        "Completed, reprocessed only if you include them below: 8"
        in page.find("#confirm-completed-count").text
    )
    assert "cancel them first" in page.find("#confirm-untouched").text
    assert len(page.find_all("#job-orders tbody tr")) == 50
    assert page.find("#job-orders-more").text == "… and 7 more."
    make_orders(5, log=False)  # match the list now, but were not selected
    page.screenshot("13-3-confirm")

    page.find("#confirm-submit").click()
    assert "in the background" in page.find("ul.messagelist li").text
    assert page.find("#job-status").text == "Queued: waiting for a worker"
    job = BulkJob.objects.get()

    first_chunk, go_on = threading.Event(), threading.Event()

    def after_each_chunk(job):
        first_chunk.set()
        go_on.wait(30)

    def worker():
        try:
            jobs.job_run(job, progress=after_each_chunk)
        finally:
            connections.close_all()

    running = threading.Thread(target=worker)
    running.start()
    try:
        assert first_chunk.wait(30)
        page.driver.refresh()
        assert page.find("#job-progress").text.startswith("20 of 57 orders done (35%)")
        assert page.find("#job-status").text == "Running"
        page.screenshot("13-3-job-progress")
    finally:
        go_on.set()
        running.join(30)

    WebDriverWait(page.driver, 10).until(  # the page refreshes itself
        lambda driver: page.find("#job-status").text == "Done"
    )
    assert page.find("#job-done").text == "40"
    assert page.find("#job-skipped").text.startswith("17 ")
    page.screenshot("13-3-job-done")
    assert Order.objects.filter(status=Order.Status.PENDING, run=2).count() == 40
    assert Order.objects.filter(status=Order.Status.FAILED).count() == 5
