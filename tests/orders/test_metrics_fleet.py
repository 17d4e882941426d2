"""GET /metrics answers for the fleet: counts made in qcluster workers (other processes)
are in the scrape of this one. PostgreSQL with Redis, as the product is deployed."""

from dataclasses import replace
from functools import partial

import pytest

from orders.lanes import dispatch_lanes, fleet_workers
from orders.models import Order
from tests.localserver import Reply
from tests.orders.fleet import WORKERS_PER_CLUSTER, logs
from tests.orders.test_batch import two_step_orders, wait_until
from tests.statemanager.metrics import TOKEN, scrape, value
from tests.statemanager.metrics import grew as grown

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_a_scrape_counts_the_steps_a_qcluster_ran(client, server, fleet, settings, tmp_path):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, metrics_token=TOKEN)
    server.route("POST", "/a", Reply(200))
    server.route("POST", "/b", Reply(201))
    before = scrape(client)
    orders = two_step_orders(server, 30, prefix="metrics")
    fleet()
    assert wait_until(lambda: fleet_workers() == WORKERS_PER_CLUSTER, 30), logs(tmp_path)

    dispatch_lanes()

    def done():
        return Order.objects.filter(status="completed").count() == len(orders)

    assert wait_until(done, 60), logs(tmp_path)
    # The workers flush their counts at the end of each batch.
    steps = {"blueprint": "flow", "step": "b", "outcome": "succeeded"}
    name = "statemanager_steps_total"

    def counted():
        return value(scrape(client), name, **steps) - value(before, name, **steps)

    assert wait_until(lambda: counted() == len(orders), 10)
    after = scrape(client)

    grew = partial(grown, before, after)

    assert (
        grew("statemanager_attempts_total", blueprint="flow", step="a", outcome="succeeded") == 30
    )
    assert grew("statemanager_call_duration_seconds_count", host="127.0.0.1") == 60
    assert value(after, "statemanager_orders", status="completed") == 30
    assert value(after, "statemanager_lanes") >= 1
