"""Messages on three real qclusters, PostgreSQL with the Redis broker: every order takes
its message exactly once, whether it came before the order waited, at the same time, or
after, from twenty senders at once; and a waiting order resumes within a second."""

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from orders.lanes import dispatch_lanes, fleet_workers
from orders.messages import message_receive
from orders.models import Message, MessageWait, Order, StepLog
from tests.orders.fleet import WORKERS_PER_CLUSTER, logs
from tests.orders.messages.test_message_step import STEPS
from tests.orders.test_batch import wait_until
from tests.orders.workflows import make_order

pytestmark = [pytest.mark.postgres]


def send(key: str, senders: int = 1) -> None:
    """The message for `key`, posted by `senders` at once with the same id."""
    barrier = threading.Barrier(senders)

    def post():
        try:
            barrier.wait()
            message_receive(
                name="payment.captured", key=key, data={"amount": 1}, sender_id=f"evt_{key}"
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=senders) as pool:
        for future in [pool.submit(post) for _ in range(senders)]:
            future.result()


def test_every_order_takes_its_message_once_on_three_qclusters(fleet, tmp_path):
    for _ in range(3):
        fleet()
    assert wait_until(lambda: fleet_workers() == 3 * WORKERS_PER_CLUSTER, 30), logs(tmp_path)
    dispatch_lanes()
    early = [f"pi_early_{n}" for n in range(10)]
    for key in early:  # before any order waits: kept
        send(key)
    keys = early + [f"pi_race_{n}" for n in range(10)] + [f"pi_late_{n}" for n in range(10)]
    orders = {key: make_order(STEPS, payload={"payment": key}) for key in keys}
    for n in range(10):  # while the fleet starts these orders waiting
        send(f"pi_race_{n}", senders=20)
    assert wait_until(
        lambda: (
            Order.objects.filter(payload__payment__startswith="pi_late_", status="waiting").count()
            == 10
        ),
        30,
    ), logs(tmp_path)

    latencies = []
    for n in range(10):  # to orders already waiting, twenty senders each
        key = f"pi_late_{n}"
        started = time.monotonic()
        send(key, senders=20)
        order = orders[key]
        assert wait_until(lambda o=order: _status(o) == "completed", 10), logs(tmp_path)
        latencies.append(time.monotonic() - started)

    assert wait_until(lambda: Order.objects.filter(status="completed").count() == 30, 30)
    assert Message.objects.count() == 30
    for order in orders.values():
        assert MessageWait.objects.filter(order=order, status="received").count() == 1
    # Each order resumed by a message that came while it waited was woken once.
    woken = StepLog.objects.filter(kind="message").values_list("order_id", flat=True)
    assert len(list(woken)) == len(set(woken))
    print(
        f"resumed after the message: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert max(latencies) < 1.5 and statistics.median(latencies) < 1.0


def _status(order) -> str:
    return Order.objects.filter(pk=order.pk).values_list("status", flat=True).get()
