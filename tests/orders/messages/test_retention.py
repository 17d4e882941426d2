"""Kept messages expire after the TTL; taken ones are purged with their orders."""

from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from orders.messages import message_receive
from orders.models import Message, MessageWait, Order
from orders.tasks import purge
from tests.orders.messages.test_message_step import STEPS
from tests.orders.workflows import make_order, process


def test_a_kept_message_expires_after_the_ttl():
    message_receive(name="n", key="fresh")
    message_receive(name="n", key="old")
    Message.objects.filter(key="old").update(kept_until=timezone.now() - timedelta(seconds=1))

    purge()

    assert list(Message.objects.values_list("key", flat=True)) == ["fresh"]


def test_a_taken_message_is_kept_while_its_order_is_and_purged_with_it(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, retention_days=1)
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))
    message_receive(name="payment.captured", key="pi_1", data={"amount": 1})
    assert process(order).status == "completed"

    purge()
    assert Message.objects.count() == 1  # its order is still there

    long_ago = timezone.now() - timedelta(days=2)
    Order.objects.filter(pk=order.pk).update(finished_at=long_ago)
    purge()

    assert not Order.objects.exists() and not MessageWait.objects.exists()
    assert not Message.objects.exists()


def test_an_expired_kept_message_that_an_order_took_stays_with_that_order():
    message_receive(name="payment.captured", key="pi_1", data={"amount": 1})
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))
    Message.objects.update(kept_until=timezone.now() - timedelta(seconds=1))

    purge()

    assert Message.objects.count() == 1
    assert order.message_waits.get().message is not None
