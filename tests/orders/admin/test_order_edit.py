"""The order page's edit form: checked as support types (nothing written), saved as one
edit, and only for those who may edit orders whose status allows it."""

import pytest
from django.urls import reverse

from orders.models import Order, StepLog
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order, user_in

pytestmark = pytest.mark.django_db


def staff(group: str):
    return user_in(group, is_staff=True)


def test_the_check_says_every_problem_and_writes_nothing(client, shop):
    order = shop_order("A-1", "failed")
    client.force_login(staff("Support"))

    answer = client.post(
        reverse("admin:orders_order_edit_check", args=[order.pk]),
        {"payload": '{"sku": 5, "qty": 1}', "data": "{}", "reason": ""},
    ).json()

    assert answer == {
        "ok": False,
        "errors": ["payload.sku: 5 is not of type 'string'", "reason: say why the order is edited"],
    }
    assert Order.objects.get(pk=order.pk).payload["sku"] == "mug"
    assert not StepLog.objects.filter(kind=StepLog.Kind.EDIT).exists()


def test_saving_the_form_edits_the_order_and_says_so(client, shop):
    order = shop_order("A-1", "cancelled")
    client.force_login(staff("Support"))
    url = reverse("admin:orders_order_edit", args=[order.pk])

    page = client.post(
        url, {"payload": '{"sku": "tee", "qty": 2}', "data": "{}", "reason": "r"}, follow=True
    )

    assert "The order was edited" in page.content.decode()
    assert Order.objects.get(pk=order.pk).payload == {"sku": "tee", "qty": 2}
    broken = client.post(url, {"payload": "{", "data": "{}", "reason": "r"}, follow=True)
    assert "The order was not edited: payload: not JSON" in broken.content.decode()


def test_the_form_is_offered_to_support_on_orders_it_may_edit(client, shop):
    failed, completed = shop_order("A-1", "failed"), shop_order("A-2", "completed")
    client.force_login(staff("Support"))
    assert (
        'id="order-edit"'
        in client.get(reverse("admin:orders_order_change", args=[failed.pk])).content.decode()
    )
    assert (
        'id="order-edit"'
        not in client.get(
            reverse("admin:orders_order_change", args=[completed.pk])
        ).content.decode()
    )

    client.force_login(staff("Blueprint editors"))
    page = client.get(reverse("admin:orders_order_change", args=[failed.pk])).content.decode()
    assert 'id="order-edit"' not in page
    url = reverse("admin:orders_order_edit", args=[failed.pk])
    assert client.post(url, {"payload": "{}", "reason": "r"}).status_code == 403
