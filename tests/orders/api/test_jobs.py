"""POST /api/orders/reprocess/ and /api/orders/cancel/ as jobs, GET /api/orders/jobs/{id}/."""

import pytest
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from orders import jobs
from orders.models import BulkJob, Order, StepLog
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

STATUSES = {
    "P": "pending",
    "R": "running",
    "W": "waiting",
    "C": "completed",
    "F": "failed",
    "X": "cancelled",
}


@pytest.fixture
def orders(shop):
    for order_id, status in STATUSES.items():
        shop_order(order_id, status)


@pytest.fixture
def broker():
    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


def run_queued_tasks(broker) -> None:
    """Run the tasks on the broker as a django-q2 worker would."""
    while broker.queue_size():
        for _task_id, package in broker.dequeue() or []:
            task = SignedPackage.loads(package)
            task["func"](*task["args"])


def test_a_small_bulk_reprocess_answers_its_final_counts_and_its_job(support, orders):
    response = support.post(
        "/api/orders/reprocess/", {"order_ids": list(STATUSES), "from": "failed"}, format="json"
    )

    assert response.status_code == 202
    answer = response.json()
    assert (answer["count"], answer["skipped"]) == (2, 4)
    job = answer["job"]
    assert (job["kind"], job["status"], job["total"], job["done"], job["skipped"]) == (
        "reprocess",
        "done",
        6,
        2,
        4,
    )
    assert job["options"] == {"from": "failed", "version": "pinned", "include_completed": False}
    assert job["selection"] == {"order_ids": list(STATUSES)}
    assert job["url"] == f"http://testserver/api/orders/jobs/{job['id']}/"
    assert job["actor"] == support.user.username


def test_a_large_bulk_reprocess_answers_at_once_with_a_job_to_follow(
    support, orders, broker, monkeypatch
):
    monkeypatch.setattr(jobs, "INLINE_LIMIT", 1)

    response = support.post(
        "/api/orders/reprocess/", {"status": ["failed", "running"], "from": "start"}, format="json"
    )

    assert response.status_code == 202
    answer = response.json()
    assert (answer["count"], answer["skipped"], answer["job"]["status"]) == (2, 0, "queued")
    assert Order.objects.get(order_id="F").status == "failed"
    queued = support.get(answer["job"]["url"]).json()
    assert (queued["status"], queued["done"], queued["total"]) == ("queued", 0, 2)

    run_queued_tasks(broker)

    state = support.get(answer["job"]["url"])
    assert state.status_code == 200
    assert (state.json()["status"], state.json()["done"], state.json()["skipped"]) == (
        "done",
        1,
        1,
    )
    assert Order.objects.get(order_id="F").status == "pending"
    assert state.json()["finished_at"] is not None


def test_bulk_cancel_cancels_the_selection_and_skips_finished_orders(support, orders):
    response = support.post("/api/orders/cancel/", {"order_ids": list(STATUSES)}, format="json")

    assert response.status_code == 202
    assert (response.json()["count"], response.json()["skipped"]) == (4, 2)
    assert response.json()["job"]["kind"] == "cancel"
    assert response.json()["job"]["options"] == {}
    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert statuses == {**STATUSES, "P": "cancelled", "W": "cancelled", "F": "cancelled"}
    assert Order.objects.get(order_id="R").cancel_requested
    assert set(StepLog.objects.filter(kind="cancel").values_list("actor", flat=True)) == {
        support.user.username
    }


def test_bulk_cancel_selects_by_the_list_filters(support, orders):
    response = support.post("/api/orders/cancel/", {"status": "waiting"}, format="json")

    assert (response.json()["count"], response.json()["skipped"]) == (1, 0)
    assert Order.objects.get(order_id="W").status == "cancelled"
    assert Order.objects.get(order_id="P").status == "pending"


@pytest.mark.parametrize("body", [{}, {"status": []}])
def test_bulk_cancel_refuses_a_selection_that_narrows_nothing(support, orders, body):
    response = support.post("/api/orders/cancel/", body, format="json")

    assert response.status_code == 400
    assert "order_ids or at least one filter" in response.json()["errors"][0]
    assert not Order.objects.filter(status="cancelled").exclude(order_id="X").exists()
    assert not BulkJob.objects.exists()


def test_bulk_cancel_takes_no_reprocess_options(support, orders):
    response = support.post(
        "/api/orders/cancel/", {"order_ids": ["P"], "from": "start"}, format="json"
    )

    assert response.status_code == 202
    assert response.json()["job"]["options"] == {}


def test_bulk_reprocess_refuses_a_bad_version_without_making_a_job(support, orders):
    response = support.post(
        "/api/orders/reprocess/", {"order_ids": ["F"], "version": "newest"}, format="json"
    )

    assert response.status_code == 400
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    "method, url",
    [("post", "/api/orders/cancel/"), ("post", "/api/orders/reprocess/")],
)
def test_bulk_jobs_need_the_reprocess_permission(editor, orders, method, url):
    response = getattr(editor, method)(url, {"order_ids": ["F"]}, format="json")

    assert response.status_code == 403
    assert Order.objects.get(order_id="F").status == "failed"


def test_a_job_is_shown_only_with_the_reprocess_permission(support, editor, anonymous, orders):
    job_url = support.post("/api/orders/cancel/", {"order_ids": ["P"]}, format="json").json()[
        "job"
    ]["url"]

    assert editor.get(job_url).status_code == 403
    assert anonymous.get(job_url).status_code == 401


def test_an_unknown_job_is_404(support):
    assert support.get("/api/orders/jobs/999999/").status_code == 404


def test_the_bulk_endpoints_and_the_job_are_in_the_openapi_schema(support):
    paths = support.get("/api/schema/?format=json").json()["paths"]

    assert "post" in paths["/api/orders/cancel/"]
    assert "post" in paths["/api/orders/reprocess/"]
    job = paths["/api/orders/jobs/{job_id}/"]["get"]
    assert job["parameters"][0]["schema"]["type"] == "integer"
    answer = paths["/api/orders/reprocess/"]["post"]["responses"]["202"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/BulkResult")
