"""GET /metrics: behind its bearer token, the fleet's counts in Prometheus' text format."""

from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from hosts.models import Host
from orders import counters
from orders.batch import run_batch
from orders.models import Order
from orders.notifications import deliver_due_events
from tests.localserver import Reply
from tests.orders.test_batch import two_step_orders
from tests.orders.test_notifications import SECRET, Receiver, notifying_order
from tests.orders.workflows import api_call, make_order, process
from tests.statemanager.metrics import TOKEN, scrape, value
from tests.statemanager.metrics import grew as grown


@pytest.fixture
def token(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, metrics_token=TOKEN)
    counters.reset()


def test_metrics_is_a_404_while_no_token_is_set(client, db):
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


def test_metrics_without_a_token_is_a_401(client, token, db):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_metrics_with_a_wrong_token_is_a_403(client, token, db):
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403


def test_metrics_counts_the_steps_attempts_and_call_durations_of_a_batch(
    client, token, server, transactional_db
):
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(500))
    two_step_orders(server, 3)
    before = scrape(client)

    run_batch()
    after = scrape(client)

    grew = partial(grown, before, after)

    assert grew("statemanager_steps_total", blueprint="flow", step="a", outcome="succeeded") == 3
    assert grew("statemanager_steps_total", blueprint="flow", step="b", outcome="failed") == 3
    assert grew("statemanager_attempts_total", blueprint="flow", step="a", outcome="succeeded") == 3
    # Every attempt is counted (b has no retry policy: one attempt each).
    failed = grew("statemanager_attempts_total", blueprint="flow", step="b", outcome="failed")
    retried = grew("statemanager_attempts_total", blueprint="flow", step="b", outcome="retrying")
    assert failed == 3 and retried >= 0
    calls = 6 + retried
    assert grew("statemanager_call_duration_seconds_count", host="127.0.0.1") == calls
    assert grew("statemanager_call_duration_seconds_bucket", host="127.0.0.1", le="+Inf") == calls
    assert value(after, "statemanager_orders", status="failed") == 3
    assert value(after, "statemanager_orders", status="pending") == 0


def test_metrics_shows_the_due_backlog_and_its_oldest_order(client, token, server, db):
    calls = [api_call("a", server.url + "/a")]
    make_order([{"id": "a", "call": "a"}], calls)
    Order.objects.update(due_at=timezone.now() - timedelta(minutes=5))
    make_order([{"id": "a", "call": "a"}], calls)

    scraped = scrape(client)

    assert value(scraped, "statemanager_orders_due") == 2
    assert 300 <= value(scraped, "statemanager_oldest_due_order_age_seconds") < 400
    assert value(scraped, "statemanager_orders", status="pending") == 2


def test_metrics_counts_holds_and_shows_breaker_states(client, token, server, transactional_db):
    Host.objects.create(host="127.0.0.1", paused_at=timezone.now())
    server.route("POST", "/a", Reply(200))
    make_order([{"id": "a", "call": "a"}], [api_call("a", server.url + "/a")])
    before = scrape(client)

    run_batch()
    scraped = scrape(client)

    grew = partial(grown, before, scraped)

    assert grew("statemanager_holds_total", host="127.0.0.1", reason="paused") == 1
    assert grew("statemanager_steps_total", blueprint="flow", step="a", outcome="held") == 1
    state = {"host": "127.0.0.1"}
    assert value(scraped, "statemanager_host_breaker_state", **state, state="closed") == 1
    assert value(scraped, "statemanager_host_breaker_state", **state, state="open") == 0


def test_metrics_counts_the_webhooks_answers_by_status(client, token, integration, shop):
    order = {"order_id": "m-1", "workflow": "shop", "payload": {"sku": "mug", "qty": 1}}
    before = scrape(client)

    integration.post("/api/orders/", order, format="json")
    integration.post("/api/orders/", order, format="json")
    integration.post(
        "/api/orders/", {**order, "order_id": "m-2", "workflow": "nope"}, format="json"
    )
    after = scrape(client)

    def grew(status):
        return value(after, "statemanager_webhook_responses_total", status=status) - value(
            before, "statemanager_webhook_responses_total", status=status
        )

    assert (grew("201"), grew("200"), grew("400")) == (1, 1, 1)
    assert (
        "order_id"
        not in client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode()
    )


def test_metrics_counts_the_notifications_delivered(
    client, token, server, settings, transactional_db
):
    settings.STATE_MANAGER = replace(
        settings.STATE_MANAGER, notify_secret=SECRET, metrics_token=TOKEN
    )
    receiver = Receiver()
    try:
        order = notifying_order(server, receiver)
        before = scrape(client)
        assert process(order).status == "completed"
        assert deliver_due_events() == 2
        after = scrape(client)
    finally:
        receiver.httpd.shutdown()
        receiver.httpd.server_close()

    assert (
        grown(before, after, "statemanager_notification_deliveries_total", outcome="delivered") == 2
    )
