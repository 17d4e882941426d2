"""Batch lanes on real qcluster processes: spread over the fleet, and nothing lost when one
is killed. PostgreSQL with the Redis broker, as the product is deployed to scale out."""

from collections import Counter

import pytest

from orders.lanes import dispatch_lanes, fleet_workers
from orders.models import Order
from tests.orders.fleet import CONCURRENCY, LANES_PER_CLUSTER, WORKERS_PER_CLUSTER, kill, logs
from tests.orders.test_batch import slow_reply, two_step_orders, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_lanes_run_on_every_qcluster_and_a_killed_one_loses_nothing(server, fleet, tmp_path):
    server.route("POST", "/a", slow_reply(0.2))
    server.route("POST", "/b", slow_reply(0.2))
    orders = two_step_orders(server, 120)
    clusters = [fleet() for _ in range(3)]
    assert wait_until(lambda: fleet_workers() == 3 * WORKERS_PER_CLUSTER, 30), logs(tmp_path)

    assert dispatch_lanes() == [1, 2, 3, 4, 5, 6]
    assert wait_until(lambda: Order.objects.filter(status="completed").count() >= 20, 60)
    kill(clusters[0])  # mid-backlog: its lanes each have a batch in flight
    assert wait_until(lambda: Order.objects.filter(status="completed").count() == len(orders), 120)

    # Lanes ran side by side across clusters: more calls at once than one cluster can make.
    assert server.max_in_flight > LANES_PER_CLUSTER * CONCURRENCY
    # Every step ran; a step ran twice only when it was in flight in the killed cluster,
    # and then with the same Idempotency-Key (one key per step and run).
    sends = Counter((r.path, r.headers["Idempotency-Key"]) for r in server.received)
    assert Counter(path for path, _key in sends) == {"/a": len(orders), "/b": len(orders)}
    repeated = [send for send, times in sends.items() if times > 1]
    # A turn goes to any worker: the killed cluster may have held a lane on each of its.
    assert len(repeated) <= WORKERS_PER_CLUSTER * CONCURRENCY
    assert all(sends[send] == 2 for send in repeated)
