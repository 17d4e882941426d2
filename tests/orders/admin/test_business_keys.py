"""The order list's search and URL select by business key (`payload.<path>=<value>`,
`data.<path>=<value>`) and by any part of the order id, and feed the bulk actions."""

import pytest

from orders.models import Order
from tests.orders.admin.test_orders import action_post
from tests.orders.admin.test_query_counts import queries_for

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/orders/order/"


def with_customer(order: Order, customer: str, **data) -> Order:
    order.payload = {**order.payload, "customer": {"id": customer}}
    order.data = {**order.data, **data}
    order.save(update_fields=["payload", "data"])
    return order


@pytest.fixture
def customers(make_orders):
    """Two failed orders of C-42, one of C-43, and a completed one of C-42."""
    first, second, third = make_orders(3)
    (done,) = make_orders(1, status=Order.Status.COMPLETED)
    return {
        "C-42": [with_customer(first, "C-42", tracking="TRK-1"), with_customer(done, "C-42")],
        "C-43": [with_customer(second, "C-43")],
        "failed C-42": [first],
        "other": [with_customer(third, "C-44")],
    }


def listed(page) -> set[Order]:
    assert page.status_code == 200
    return set(page.context["cl"].result_list)


def test_the_search_box_takes_a_business_key(admin_client_for, support, customers):
    client = admin_client_for(support)

    page = client.get(CHANGELIST, {"q": "payload.customer.id=C-42"})

    assert listed(page) == set(customers["C-42"])
    assert 'value="payload.customer.id=C-42"' in page.text


def test_the_search_box_takes_several_keys_and_part_of_an_order_id(
    admin_client_for, support, customers
):
    client = admin_client_for(support)
    (first, done) = customers["C-42"]

    both = client.get(CHANGELIST, {"q": " payload.customer.id=C-42  data.tracking=TRK-1 "})
    with_id = client.get(CHANGELIST, {"q": f"{done.order_id[-3:]} payload.customer.id=C-42"})

    assert listed(both) == {first}
    assert listed(with_id) == {done}


def test_the_search_finds_any_part_of_the_order_id_in_any_case(
    admin_client_for, support, make_orders
):
    orders = make_orders(3)
    middle = orders[1].order_id[2:7].lower()  # "d-000" of "ORD-000nn": neither start nor case

    page = admin_client_for(support).get(CHANGELIST, {"q": middle})

    assert listed(page) == set(orders)
    assert listed(admin_client_for(support).get(CHANGELIST, {"q": orders[1].order_id[-4:]})) == {
        orders[1]
    }


def test_a_bad_key_in_the_search_lists_nothing_and_says_why(admin_client_for, support, customers):
    page = admin_client_for(support).get(CHANGELIST, {"q": "payload.items.0.sku=TEE"})

    assert listed(page) == set()
    messages = [str(message) for message in page.context["messages"]]
    assert messages == [
        'Search: payload.items.0.sku: "0" is a list position; a path names '
        "object keys only, lists are not indexed"
    ]


def test_business_keys_in_the_url_select_and_show_in_the_sidebar(
    admin_client_for, support, customers
):
    client = admin_client_for(support)

    page = client.get(CHANGELIST, {"payload.customer.id": "C-42", "status__exact": "failed"})

    assert listed(page) == set(customers["failed C-42"])
    assert "payload.customer.id = C-42" in page.text
    assert page.context["cl"].has_active_filters


def test_a_key_repeated_in_the_url_matches_any_of_its_values(admin_client_for, support, customers):
    page = admin_client_for(support).get(
        CHANGELIST + "?payload.customer.id=C-42&payload.customer.id=C-43"
    )
    assert listed(page) == set(customers["C-42"] + customers["C-43"])


def test_a_bad_key_in_the_url_lists_nothing_and_says_why(admin_client_for, support, customers):
    page = admin_client_for(support).get(CHANGELIST + "?payload..id=x")

    assert listed(page) == set()
    messages = [str(message) for message in page.context["messages"]]
    assert messages == [
        "Business key: payload..id: an empty key in the path: write payload.<key>.<key>=<value>"
    ]


def test_reprocess_all_matching_a_searched_key_takes_only_those_orders(
    admin_client_for, support, customers
):
    client = admin_client_for(support)
    url = CHANGELIST + "?q=payload.customer.id%3DC-42"
    selection = action_post("reprocess_from_start", customers["C-42"][:1], select_across="1")

    confirmation = client.post(url, {**selection, "index": "0"})
    assert (confirmation.context["total"], confirmation.context["completed"]) == (2, 1)

    client.post(url, {**selection, "confirm": "yes"})
    (first, done) = customers["C-42"]
    assert Order.objects.get(pk=first.pk).run == 2
    assert Order.objects.get(pk=done.pk).run == 1  # completed, not included
    others = customers["C-43"] + customers["other"]
    assert Order.objects.filter(pk__in=[o.pk for o in others], run=1).count() == 2


def test_cancel_all_matching_a_key_in_the_url_takes_only_those_orders(
    admin_client_for, support, customers
):
    client = admin_client_for(support)
    url = CHANGELIST + "?payload.customer.id=C-43"
    client.post(
        url,
        action_post("cancel_orders", customers["C-43"], select_across="1", confirm="yes"),
    )
    assert Order.objects.filter(status=Order.Status.CANCELLED).count() == 1
    assert Order.objects.get(pk=customers["C-43"][0].pk).status == Order.Status.CANCELLED


@pytest.mark.parametrize(
    "query", ["?payload.customer.id=C-42", "?q=payload.customer.id%3DC-42", "?q=ORD-0"]
)
def test_a_business_key_list_makes_the_same_queries_whatever_the_orders(
    admin_client_for, support, make_orders, query
):
    client = admin_client_for(support)
    url = CHANGELIST + query
    for order in make_orders(5):
        with_customer(order, "C-42")
    client.get(url)  # warm the session and permission caches alike for both counts
    with_five = queries_for(client, url)
    for order in make_orders(45):
        with_customer(order, "C-42")
    assert queries_for(client, url) == with_five
    assert with_five <= 10
