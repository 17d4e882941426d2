"""What an order waits for: the list's "waiting for" column names the retry, the
callback, the message, the host or the paused blueprint, and the order page says when
its blueprint's pause holds it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from blueprints.services import blueprint_pause, blueprint_resume
from orders.models import Order

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


def waiting(order: Order, **step_state) -> None:
    Order.objects.filter(pk=order.pk).update(
        status=Order.Status.WAITING,
        due_at=timezone.now() + timedelta(minutes=5),
        step_state=step_state,
    )


def column(client) -> dict[str, str | None]:
    page = client.get(reverse(CHANGELIST))
    return {
        order.order_id: (order.waiting_for.text if order.waiting_for else None)
        for order in page.context["cl"].result_list
    }


def test_the_list_says_what_each_order_waits_for(admin_client_for, support, make_orders):
    retry, callback, message, host, pending, failed = make_orders(6)
    waiting(retry, retry={"attempt": 1})
    waiting(callback, callback={"url": "https://x/api/callbacks/t/", "token": "t"})
    waiting(message, message={"wait": 1, "name": "payment.captured", "key": "A-1"})
    waiting(host, held={"host": "api.partner.example", "kind": "paused", "count": 1})
    Order.objects.filter(pk=pending.pk).update(status=Order.Status.PENDING)

    shown = column(admin_client_for(support))

    assert shown[retry.order_id].startswith("retry due at ")
    assert shown[callback.order_id] == "callback"
    assert shown[message.order_id] == "message payment.captured"
    assert shown[host.order_id] == "host api.partner.example (paused)"
    assert shown[pending.order_id] == "next batch"
    assert shown[failed.order_id] is None


def test_a_paused_blueprint_holds_its_unfinished_orders_in_the_list(
    admin_client_for, support, make_orders, blueprint
):
    held, done = make_orders(2)
    waiting(held, callback={"url": "u", "token": "t"})
    blueprint_pause(blueprint=blueprint, actor="ann")

    shown = column(admin_client_for(support))

    assert shown == {held.order_id: "blueprint paused", done.order_id: None}


def test_the_order_page_says_its_blueprint_is_paused_and_by_whom(
    admin_client_for, support, make_orders, blueprint
):
    (order,) = make_orders(1, status=Order.Status.PENDING)
    blueprint_pause(blueprint=blueprint, actor="ann")
    client = admin_client_for(support)
    url = reverse("admin:orders_order_change", args=[order.pk])

    page = client.get(url).text

    assert 'id="order-blueprint-paused"' in page
    assert "is <strong>paused</strong>" in page and "<strong>ann</strong>" in page
    blueprint_resume(blueprint=blueprint, actor="ann")
    assert 'id="order-blueprint-paused"' not in client.get(url).text
