"""A blueprint's concurrency key: rendered from each order's input when it is created, and
at most one order per key value running at once; the others stay due until it is done."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders import claims
from orders.batch import run_batch
from orders.claims import claim_due_orders
from orders.models import Order
from tests.localserver import Reply
from tests.statemanager.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "{{ input.customer_id }}"


@pytest.fixture
def keyed(server):
    """Blueprint `keyed`, one call to the local partner, keyed by the customer."""
    server.route("POST", "/call", Reply(200, {"ok": True}))
    api_call_save(
        definition={"slug": "call", "name": "call", "method": "POST", "url": f"{server.url}/call"}
    )
    steps = [{"id": "call", "call": "call"}]
    blueprint_save(
        definition={"slug": "keyed", "name": "keyed", "concurrency_key": KEY, "steps": steps}
    )
    blueprint_save(definition={"slug": "plain", "name": "plain", "steps": steps})
    return server


def post(client, order_id: str, payload: dict, workflow: str = "keyed"):
    body = {"order_id": order_id, "workflow": workflow, "payload": payload}
    return client.post("/api/orders/", body, format="json")


def post_orders(client, *orders: tuple[str, dict]) -> None:
    for number, (order_id, payload) in enumerate(orders):
        assert post(client, order_id, payload).status_code == 201
        # Oldest due first: the claim takes them in the order posted.
        Order.objects.filter(order_id=order_id).update(
            due_at=timezone.now() - timedelta(seconds=60 - number)
        )


def status(order_id: str) -> str:
    return Order.objects.get(order_id=order_id).status


def running_holder(order_id: str, *, lease: timedelta) -> None:
    """The order is running under a worker's lease (live, or run out when negative)."""
    Order.objects.filter(order_id=order_id).update(
        status=Order.Status.RUNNING, lease_expires_at=timezone.now() + lease
    )


def claimed_ids(**kwargs) -> set[str]:
    pks = [claim.order_pk for claim in claim_due_orders(lease_seconds=60, **kwargs)]
    return set(Order.objects.filter(pk__in=pks).values_list("order_id", flat=True))


def test_the_key_is_rendered_once_from_the_input_when_the_order_is_created(integration, keyed):
    assert post(integration, "a", {"customer_id": 7}).status_code == 201
    assert post(integration, "b", {"customer_id": "C-1"}).status_code == 201
    assert post(integration, "c", {"customer_id": None}).status_code == 201
    assert post(integration, "d", {}, workflow="plain").status_code == 201

    keys = dict(Order.objects.values_list("order_id", "concurrency_key"))
    assert keys == {"a": "7", "b": "C-1", "c": "", "d": ""}
    # Rendered once: a later edit of the blueprint leaves existing orders' keys alone.
    blueprint_save(
        definition={
            "slug": "keyed",
            "name": "keyed",
            "concurrency_key": "{{ order.workflow }}",
            "steps": [{"id": "call", "call": "call"}],
        }
    )
    assert Order.objects.get(order_id="a").concurrency_key == "7"
    assert post(integration, "e", {}).status_code == 201
    assert Order.objects.get(order_id="e").concurrency_key == "keyed"


def test_a_key_that_cannot_be_rendered_is_a_400_naming_concurrency_key(integration, keyed):
    response = post(integration, "a", {"sku": "no customer"})

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error.startswith("concurrency_key: ") and "customer_id" in error
    assert not Order.objects.exists()


def test_a_claim_takes_one_order_per_key_and_leaves_the_others_due(integration, keyed):
    post_orders(
        integration,
        ("c1-a", {"customer_id": 1}),
        ("c1-b", {"customer_id": 1}),
        ("c2-a", {"customer_id": 2}),
        ("c1-c", {"customer_id": 1}),
    )
    assert post(integration, "plain", {}, workflow="plain").status_code == 201

    assert claimed_ids(limit=10) == {"c1-a", "c2-a", "plain"}
    assert {status("c1-b"), status("c1-c")} == {"pending"}
    assert claimed_ids(limit=10) == set()  # c1-a runs


def test_an_order_waits_while_one_with_its_key_runs_and_the_next_claim_takes_it(integration, keyed):
    post_orders(integration, ("c1-a", {"customer_id": 1}), ("c1-b", {"customer_id": 1}))
    running_holder("c1-a", lease=timedelta(hours=1))

    assert claimed_ids(limit=10) == set()
    Order.objects.filter(order_id="c1-a").update(status=Order.Status.COMPLETED)
    assert claimed_ids(limit=10) == {"c1-b"}


def test_an_order_whose_lease_ran_out_keeps_its_key_until_it_is_claimed_again(integration, keyed):
    post_orders(integration, ("c1-a", {"customer_id": 1}), ("c1-b", {"customer_id": 1}))
    running_holder("c1-a", lease=timedelta(minutes=-1))  # its worker died

    assert claimed_ids(limit=10) == {"c1-a"}
    assert status("c1-b") == "pending"


def test_a_second_batch_runs_other_keys_while_a_slow_order_holds_its_key(integration, keyed):
    entered = threading.Event()

    def slow(request):
        if request.body.get("customer_id") == 1:
            entered.set()
            time.sleep(1.0)
        return Reply(200, {"ok": True})

    keyed.route("POST", "/call", slow)
    api_call_save(
        definition={
            "slug": "call",
            "name": "call",
            "method": "POST",
            "url": f"{keyed.url}/call",
            "body": {"customer_id": "{{ input.customer_id }}"},
        }
    )
    post_orders(
        integration,
        ("c1-a", {"customer_id": 1}),
        ("c1-b", {"customer_id": 1}),
        ("c2-a", {"customer_id": 2}),
    )

    def first_batch():
        try:
            run_batch(batch_size=1)
        finally:
            connection.close()

    first = threading.Thread(target=first_batch)
    first.start()
    assert entered.wait(5)  # c1-a is in its call
    second = run_batch(batch_size=10)
    first.join()

    assert second.claimed == 1
    assert (status("c1-a"), status("c1-b"), status("c2-a")) == ("completed", "pending", "completed")
    assert keyed.max_in_flight == 2  # different keys ran together
    assert run_batch(batch_size=10).claimed == 1
    assert status("c1-b") == "completed"


def test_orders_without_a_key_are_claimed_with_the_same_statements(integration, keyed):
    post_orders(integration, ("c1-a", {"customer_id": 1}))
    with CaptureQueriesContext(connection) as with_key:
        assert claimed_ids(limit=10) == {"c1-a"}
    assert post(integration, "plain", {}, workflow="plain").status_code == 201
    with CaptureQueriesContext(connection) as without_key:
        assert claimed_ids(limit=10) == {"plain"}

    assert len(without_key.captured_queries) == len(with_key.captured_queries)


def test_the_database_refuses_a_second_running_order_of_a_key(integration, keyed, monkeypatch):
    """Two claims racing for one key each see it free; the unique partial index
    `order_running_key` fails the second's UPDATE, and that claim leaves the order due."""
    post_orders(integration, ("c1-a", {"customer_id": 1}), ("c1-b", {"customer_id": 1}))
    running_holder("c1-a", lease=timedelta(hours=1))
    monkeypatch.setattr(claims, "key_free", Q)  # as if the running order were not seen yet

    assert claimed_ids(limit=10) == set()
    assert status("c1-b") == "pending"


@pytest.mark.postgres
def test_the_claim_reads_the_due_index_and_the_key_index_on_postgresql(integration, keyed):
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's (run with DATABASE_URL=postgres://...)")
    post_orders(integration, ("c1-a", {"customer_id": 1}))
    order = Order.objects.get()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_order (
                order_id, workflow, snapshot_id, payload, data, status, current_step, error,
                failed_step, run, attempt, steps_in_run, step_state, resume_point,
                cancel_requested, concurrency_key, created_at, updated_at, due_at
            )
            SELECT 'fill-' || g, 'keyed', %s, '{}', '{}',
                CASE WHEN g %% 100 = 0 THEN 'running' ELSE 'completed' END,
                'call', '', '', 1, 0, 0, '{}', '{}', false, 'k' || g, now(), now(),
                CASE WHEN g %% 100 = 0 THEN now() END
            FROM generate_series(1, 50000) AS g
            """,
            [order.snapshot_id],
        )
        cursor.execute("ANALYZE orders_order")
        with transaction.atomic():
            candidates = claims.due_candidates(timezone.now())[:100]
            sql, params = candidates.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "order_claimable_due" in plan, plan
    assert "order_running_key" in plan, plan
