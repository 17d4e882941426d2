"""The `message` step and `POST /api/messages/` (contract section 11), through the API and
the engine's entry point."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Message, MessageWait, Order
from tests.orders.workflows import make_order, process
from tests.statemanager.fixtures import *  # noqa: F403

WAIT = {
    "id": "paid",
    "message": {"name": "payment.captured", "key": "{{ input.payment }}", "timeout_seconds": 60},
    "save": {"amount": "{{ message.data.amount }}", "via": "{{ message.id }}"},
}
pytestmark = pytest.mark.django_db(transaction=True)

STEPS = [WAIT, {"id": "done", "end": "completed"}]


def post(client, **message):
    return client.post("/api/messages/", message, format="json")


def test_a_waiting_order_resumes_with_the_message(integration):
    order = process(make_order(STEPS, payload={"payment": "pi_123"}))
    assert order.status == "waiting"

    answer = post(
        integration, name="payment.captured", key="pi_123", data={"amount": 42}, id="evt_1"
    )

    assert answer.status_code == 202 and answer.json() == {"matched": 1}
    order.refresh_from_db()
    assert order.status == "pending"
    order = process(order)
    assert order.status == "completed"
    assert order.data == {"amount": 42, "via": "evt_1"}


def test_a_message_that_comes_first_is_kept_and_taken_when_the_order_waits(integration):
    answer = post(integration, name="payment.captured", key="pi_9", data={"amount": 7})
    assert answer.json() == {"matched": 0}

    order = process(make_order(STEPS, payload={"payment": "pi_9"}))

    assert order.status == "completed" and order.data["amount"] == 7
    assert Message.objects.get().kept_until > timezone.now()


def test_each_order_that_starts_waiting_takes_a_kept_message_once(integration):
    post(integration, name="payment.captured", key="pi_5", data={"amount": 1})
    loop = [WAIT, {"id": "again", "message": WAIT["message"]}]

    first = process(make_order(loop, payload={"payment": "pi_5"}))
    second = process(make_order(STEPS, payload={"payment": "pi_5"}))

    assert second.status == "completed"
    # The first took it at "paid"; at "again" it waits for another one.
    assert first.status == "waiting" and first.current_step == "again"
    assert MessageWait.objects.filter(order=first, status="received").count() == 1


def test_a_message_for_another_key_or_name_leaves_the_order_waiting(integration):
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))

    assert post(integration, name="payment.captured", key="pi_2").json() == {"matched": 0}
    assert post(integration, name="payment.failed", key="pi_1").json() == {"matched": 0}

    order.refresh_from_db()
    assert order.status == "waiting"


def test_the_same_sender_id_again_is_a_200_that_changes_nothing(integration):
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))
    first = post(integration, name="payment.captured", key="pi_1", data={"amount": 1}, id="e1")
    again = post(integration, name="payment.captured", key="pi_1", data={"amount": 2}, id="e1")

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"matched": 1}
    assert Message.objects.count() == 1
    assert process(order).data["amount"] == 1


def test_no_message_within_the_timeout_fails_the_step_and_takes_on_failed():
    steps = [
        {**WAIT, "on_failed": "late"},
        {"id": "done", "end": "completed"},
        {"id": "late", "end": "failed", "error": "never paid"},
    ]
    order = process(make_order(steps, payload={"payment": "pi_123"}))
    MessageWait.objects.update(until=timezone.now() - timedelta(seconds=1))
    Order.objects.filter(pk=order.pk).update(due_at=timezone.now())

    order = process(order)

    assert order.status == "failed" and order.error == "never paid"
    failed = order.log.get(step="paid", outcome="failed")
    assert failed.error == "no message payment.captured for key pi_123 within 60 s"
    assert MessageWait.objects.get().status == "timed out"


def test_a_message_after_the_timeout_is_kept_not_taken(integration):
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))
    MessageWait.objects.update(until=timezone.now() - timedelta(seconds=1))

    assert post(integration, name="payment.captured", key="pi_1").json() == {"matched": 0}
    order.refresh_from_db()
    assert order.status == "waiting"


def test_a_cancelled_order_no_longer_waits(integration, superuser):
    order = process(make_order(STEPS, payload={"payment": "pi_1"}))
    assert superuser.post(f"/api/orders/{order.order_id}/cancel/").status_code == 202

    assert post(integration, name="payment.captured", key="pi_1").json() == {"matched": 0}
    assert MessageWait.objects.get().status == "closed"


def test_posting_a_message_needs_the_post_message_permission(support, anonymous):
    assert post(support, name="a", key="b").status_code == 403
    assert post(anonymous, name="a", key="b").status_code == 401
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"key": "k"}, "name"),
        ({"name": "n", "key": ""}, "key"),
        ({"name": "n", "key": "k", "data": [1]}, "data"),
        ({"name": "n", "key": "k" * 501}, "key"),
    ],
)
def test_a_malformed_message_is_a_400_naming_the_field(integration, body, reason):
    answer = integration.post("/api/messages/", body, format="json")
    assert answer.status_code == 400 and reason in answer.content.decode()


def test_a_key_the_database_cannot_hold_fails_the_step():
    steps = [{**WAIT, "message": {**WAIT["message"], "key": "{{ input.payment * 300 }}"}}]
    order = process(make_order(steps, payload={"payment": "pi_"}))
    assert order.status == "failed"
    assert order.error == 'step "paid": message.key: is over 500 characters'
    assert not MessageWait.objects.exists()
