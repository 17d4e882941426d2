"""Batch lanes on real qcluster processes: spread over the fleet, and nothing lost when one
is killed. PostgreSQL with the Redis broker, as the product is deployed to scale out."""

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from orders.lanes import dispatch_lanes, fleet_workers
from orders.models import Order
from tests.orders.test_batch import ROOT, slow_reply, two_step_orders, wait_until, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WORKERS_PER_CLUSTER = 3
# Each cluster keeps one worker free of lanes (orders.lanes.lanes_for).
LANES_PER_CLUSTER = WORKERS_PER_CLUSTER - 1
CONCURRENCY = 4


@pytest.fixture
def fleet(tmp_path):
    """Start qcluster processes on the test database; SIGKILL whatever is left at the end."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip(
            "runs qclusters on PostgreSQL with the Redis broker (set DATABASE_URL, REDIS_URL)"
        )
    clusters: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = worker_env(
            REDIS_URL=settings.REDIS_URL,
            Q_WORKERS=WORKERS_PER_CLUSTER,
            STATE_MANAGER_INTERVAL_SECONDS=1,
            STATE_MANAGER_LEASE_SECONDS=3,
            STATE_MANAGER_BATCH_SIZE=10,
            STATE_MANAGER_CONCURRENCY=CONCURRENCY,
        )
        log = open(tmp_path / f"qcluster-{len(clusters)}.log", "w")  # noqa: SIM115
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the sentinel and its workers
        )
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        kill(cluster)


def kill(cluster: subprocess.Popen) -> None:
    try:
        os.killpg(cluster.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    cluster.wait(timeout=10)


def logs(tmp_path) -> str:
    return "\n".join(path.read_text()[-2000:] for path in sorted(tmp_path.glob("*.log")))


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
