"""The order page of an order with a map step in a real browser: the map drawn as a
stack with its inner call, each item's attempts grouped under it."""

import pytest

from tests.admin_fixtures import staff_in
from tests.orders.admin.test_order_page_maps import map_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_support_reads_a_maps_items_one_by_one(page, server):
    order = map_order(server)

    page.log_in(staff_in("Support"))
    page.open(f"/admin/orders/order/{order.pk}/change/")

    assert page.find('#order-flow g[data-step="reserve"] .sm-map-inner')
    visit = page.find('#order-timeline .sm-visit[data-step="reserve"]')
    items = visit.find_elements("css selector", ".sm-map-item")
    assert [item.get_attribute("data-step") for item in items] == [
        "reserve[0]",
        "reserve[1]",
        "reserve[2]",
    ]
    failed = items[2].find_element("css selector", "details")
    assert failed.get_attribute("open") is not None  # the failed item is open at once
    assert "HTTP 409" in items[2].text
    assert "3 items: 2 succeeded, 1 failed (tolerated)" in visit.text
    page.screenshot("map-order-page")
