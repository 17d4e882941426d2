"""Nothing is lost to a race (contract section 11), on PostgreSQL: a message and a wait at
the same instant meet exactly once; twenty senders posting the same message at once
resume the waiting order exactly once."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from orders import correlation
from orders.batch import run_batch
from orders.models import Message, MessageWait, StepLog
from tests.orders.messages.test_message_step import STEPS, post
from tests.orders.workflows import make_order, process
from tests.statemanager.fixtures import *  # noqa: F403


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the races are run on PostgreSQL (set DATABASE_URL)")


def at_once(*work, times=1):
    """Run the callables together from a barrier, each on its own thread and connection."""
    barrier = threading.Barrier(len(work) * times)

    def run(job):
        try:
            barrier.wait()
            return job()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(work) * times) as pool:
        return list(pool.map(run, [job for job in work for _ in range(times)]))


def test_a_message_and_a_wait_at_the_same_instant_meet_exactly_once(integration):
    for round_ in range(20):
        key = f"pi_{round_}"
        order = make_order(STEPS, payload={"payment": key})

        answers = at_once(
            run_batch,
            lambda key=key: post(integration, name="payment.captured", key=key, data={"amount": 1}),
        )

        order.refresh_from_db()
        if order.status != "completed":
            order = process(order)
        assert order.status == "completed", f"round {round_}: {order.status}"
        assert MessageWait.objects.filter(order=order, status="received").count() == 1
        assert answers[1].status_code == 202


def test_twenty_senders_of_the_same_message_resume_the_order_once(integration):
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))
    assert order.status == "waiting"

    message = {"name": "payment.captured", "key": "pi_1", "id": "evt_1", "data": {"amount": 5}}
    answers = at_once(lambda: post(integration, **message), times=20)

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 19 + [202]
    assert {answer.json()["matched"] for answer in answers} == {1}
    assert Message.objects.count() == 1
    assert StepLog.objects.filter(order=order, kind="message").count() == 1
    assert process(order).status == "completed"


def test_twenty_different_messages_at_once_resume_the_order_once_and_keep_the_rest(
    integration,
):
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))

    answers = at_once(
        lambda: post(integration, name="payment.captured", key="pi_1", data={"amount": 1}), times=20
    )

    assert sorted(answer.json()["matched"] for answer in answers) == [0] * 19 + [1]
    assert StepLog.objects.filter(order=order, kind="message").count() == 1
    assert Message.objects.filter(kept_until__isnull=False).count() == 19
    assert process(order).status == "completed"


# The two sides of the correlation, each held open mid-transaction while the other comes:
# the one that comes second waits for the lock, then sees the first.


def hold_open(side, seconds=0.3):
    def run():
        with transaction.atomic():
            result = side()
            time.sleep(seconds)
        return result

    return run


def later(side, seconds=0.1):
    def run():
        time.sleep(seconds)
        return side()

    return run


def test_a_message_that_comes_while_a_wait_is_being_written_finds_it():
    order = make_order(STEPS, payload={"payment": "pi_1"})
    now = timezone.now()

    def wait():
        return correlation.start_wait(
            order_pk=order.pk,
            run=1,
            step="paid",
            name="n",
            key="k",
            until=now + timedelta(seconds=60),
            now=now,
        )

    def message():
        return correlation.deliver(
            name="n", key="k", data={}, sender_id="", source="", now=timezone.now(), ttl=60
        )

    started, (delivered, _) = at_once(hold_open(wait), later(message))

    assert started.status == "waiting"
    assert delivered.matched == 1 and delivered.kept_until is None
    assert MessageWait.objects.get().status == "received"


def test_a_wait_that_starts_while_a_message_is_being_written_takes_it():
    order = make_order(STEPS, payload={"payment": "pi_1"})

    def message():
        return correlation.deliver(
            name="n", key="k", data={}, sender_id="", source="", now=timezone.now(), ttl=60
        )

    def wait():
        now = timezone.now()
        return correlation.start_wait(
            order_pk=order.pk,
            run=1,
            step="paid",
            name="n",
            key="k",
            until=now + timedelta(seconds=60),
            now=now,
        )

    (delivered, _), started = at_once(hold_open(message), later(wait))

    assert delivered.matched == 0 and delivered.kept_until is not None
    assert started.status == "received" and started.message_id == delivered.pk
