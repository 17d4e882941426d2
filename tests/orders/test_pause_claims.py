"""Batches and a paused blueprint: its orders are accepted and left due, other workflows'
orders run, and resuming lets the next batch run them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apicalls.services import api_call_save
from blueprints.models import Blueprint
from blueprints.services import blueprint_pause, blueprint_resume, blueprint_save
from orders.batch import run_batch
from orders.claims import claim_due_orders
from orders.models import Order
from tests.localserver import Reply
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_workflows(server):
    """Blueprints `held` and `other`, each one call to the local partner."""
    for slug in ("held", "other"):
        server.route("POST", f"/{slug}", Reply(200, {"ok": True}))
        api_call_save(
            definition={"slug": slug, "name": slug, "method": "POST", "url": f"{server.url}/{slug}"}
        )
        blueprint_save(
            definition={"slug": slug, "name": slug, "steps": [{"id": "call", "call": slug}]}
        )
    return Blueprint.objects.get(slug="held")


def post_orders(client, workflow: str, count: int) -> None:
    for number in range(count):
        body = {"order_id": f"{workflow}-{number}", "workflow": workflow, "payload": {}}
        assert client.post("/api/orders/", body, format="json").status_code == 201


def statuses(workflow: str) -> set[str]:
    return set(Order.objects.filter(workflow=workflow).values_list("status", flat=True))


def test_batches_leave_a_paused_blueprints_orders_due_until_it_is_resumed(
    integration, server, two_workflows
):
    blueprint_pause(blueprint=two_workflows, actor="ann")
    post_orders(integration, "held", 3)  # the webhook still accepts them
    post_orders(integration, "other", 2)
    due_before = dict(Order.objects.filter(workflow="held").values_list("pk", "due_at"))

    report = run_batch(batch_size=10)

    assert report.claimed == 2
    assert statuses("other") == {"completed"} and statuses("held") == {"pending"}
    assert dict(Order.objects.filter(workflow="held").values_list("pk", "due_at")) == due_before
    assert not Order.objects.get(order_id="held-0").log.exists()
    assert server.requests_to("/held") == [] and len(server.requests_to("/other")) == 2

    blueprint_resume(blueprint=two_workflows, actor="ann")
    report = run_batch(batch_size=10)

    assert report.claimed == 3
    assert statuses("held") == {"completed"} and len(server.requests_to("/held")) == 3


def test_waiting_and_abandoned_orders_of_a_paused_blueprint_are_not_claimed(
    integration, two_workflows
):
    post_orders(integration, "held", 3)
    now = timezone.now()
    held = list(Order.objects.filter(workflow="held").order_by("pk"))
    Order.objects.filter(pk=held[1].pk).update(status="waiting", due_at=now - timedelta(minutes=1))
    Order.objects.filter(pk=held[2].pk).update(
        status="running",
        due_at=now - timedelta(hours=1),
        lease_expires_at=now - timedelta(minutes=1),
    )
    blueprint_pause(blueprint=two_workflows, actor="ann")

    assert claim_due_orders(limit=10, lease_seconds=60) == []
    assert statuses("held") == {"pending", "waiting", "running"}

    blueprint_resume(blueprint=two_workflows, actor="ann")
    claimed = claim_due_orders(limit=10, lease_seconds=60)
    assert {claim.order_pk for claim in claimed} == {order.pk for order in held}


def test_a_claim_with_nothing_paused_is_the_same_query_as_before(integration, two_workflows):
    post_orders(integration, "other", 1)

    with CaptureQueriesContext(connection) as running:
        claim_due_orders(limit=10, lease_seconds=60)
    blueprint_pause(blueprint=two_workflows, actor="ann")
    Order.objects.update(status="pending", claim_token=None, due_at=timezone.now())
    with CaptureQueriesContext(connection) as paused:
        claimed = claim_due_orders(limit=10, lease_seconds=60)

    assert len(claimed) == 1
    claim_sql = [q["sql"] for q in running.captured_queries if "orders_order" in q["sql"]]
    paused_filter = '"orders_order"."workflow" IN'
    assert claim_sql and not any(paused_filter in sql for sql in claim_sql if "SELECT" in sql)
    assert len(paused.captured_queries) == len(running.captured_queries)
    assert any("NOT" in q["sql"] and "held" in str(q) for q in paused.captured_queries)
