"""The order list and the order page make the same number of queries whatever the rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from blueprints.models import WorkflowSnapshot
from orders.models import Order
from tests.admin_fixtures import add_log

pytestmark = pytest.mark.django_db


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_order_list_queries_do_not_grow_with_orders(admin_client_for, support, make_orders):
    client = admin_client_for(support)
    url = reverse("admin:orders_order_changelist")
    make_orders(5)
    client.get(url)  # warm the session and permission caches alike for both counts
    with_five = queries_for(client, url)
    make_orders(45)
    with_fifty = queries_for(client, url)
    assert with_five == with_fifty
    assert with_fifty <= 10


def test_filtered_order_list_queries_do_not_grow_with_orders(
    admin_client_for, support, make_orders
):
    client = admin_client_for(support)
    url = (
        reverse("admin:orders_order_changelist") + "?status__exact=failed&workflow=ecommerce-order"
    )
    make_orders(5)
    client.get(url)
    with_five = queries_for(client, url)
    make_orders(45)
    assert queries_for(client, url) == with_five


def test_order_page_queries_do_not_grow_with_log_entries(admin_client_for, support, make_orders):
    client = admin_client_for(support)
    (order,) = make_orders(1)
    url = reverse("admin:orders_order_change", args=[order.pk])
    client.get(url)
    with_few = queries_for(client, url)
    for _ in range(12):
        add_log(order)
    with_many = queries_for(client, url)
    assert with_few == with_many
    assert with_many <= 10


def test_order_page_queries_do_not_grow_with_orders(admin_client_for, support, make_orders):
    client = admin_client_for(support)
    (order, *_) = make_orders(5)
    url = reverse("admin:orders_order_change", args=[order.pk])
    client.get(url)
    with_five = queries_for(client, url)
    make_orders(45)
    assert queries_for(client, url) == with_five


def test_unfiltered_order_list_never_counts_the_whole_table_twice(
    admin_client_for, support, make_orders
):
    make_orders(3)
    client = admin_client_for(support)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("admin:orders_order_changelist"))
    counts = [
        q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and "orders_order" in q["sql"]
    ]
    assert len(counts) <= 1


def test_filtered_order_list_counts_exactly(make_orders):
    from orders.models import Order
    from orders.selectors import EstimatedCountPaginator

    make_orders(3)
    make_orders(2, status="completed")
    paginator = EstimatedCountPaginator(Order.objects.filter(status="failed").order_by("pk"), 50)
    assert paginator.count == 3


@pytest.mark.postgres
def test_unfiltered_order_list_takes_postgresqls_estimate(make_orders, monkeypatch):
    from orders import selectors
    from orders.models import Order

    if connection.vendor != "postgresql":
        pytest.skip("the row estimate is PostgreSQL's (run with DATABASE_URL=postgres://...)")
    make_orders(4, log=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    monkeypatch.setattr(selectors, "ESTIMATE_FROM_ROWS", 1)
    paginator = selectors.EstimatedCountPaginator(Order.objects.order_by("pk"), 50)
    with CaptureQueriesContext(connection) as captured:
        assert paginator.count == 4
    assert not any("COUNT(" in query["sql"].upper() for query in captured)


def failing(orders: list, steps: list[str], workflows: list[str]) -> None:
    """Spread `orders` over failed steps, HTTP statuses, workflows and blueprint versions."""
    versions = [
        WorkflowSnapshot.objects.get_or_create(
            digest=f"{version}" * 64,
            defaults={
                "workflow": "ecommerce-order",
                "blueprint_version": version,
                "definition": {},
            },
        )[0]
        for version in (7, 8)
    ]
    for index, order in enumerate(orders):
        Order.objects.filter(pk=order.pk).update(
            failed_step=steps[index % len(steps)],
            failed_http_status=500 + index,
            workflow=workflows[index % len(workflows)],
            snapshot=versions[index % 2],
            error=f"HTTP {500 + index}\nresponse body {index}",
        )


def test_dashboard_queries_do_not_grow_with_orders(admin_client_for, support, make_orders):
    client = admin_client_for(support)
    url = reverse("admin:index")
    make_orders(2)
    make_orders(2, status="pending")
    client.get(url)
    with_four = queries_for(client, url)
    failing(make_orders(20), ["validate", "charge", "fulfil"], ["ecommerce-order", "returns"])
    make_orders(20, status="pending")
    make_orders(20, status="completed")
    assert queries_for(client, url) == with_four
    assert len(client.get(url).context["failures"]) == 6


def test_order_list_with_why_orders_failed_queries_do_not_grow_with_rows(
    admin_client_for, support, make_orders
):
    client = admin_client_for(support)
    filtered = reverse("admin:orders_order_changelist") + "?status__exact=failed&error=HTTP"
    urls = [reverse("admin:orders_order_changelist"), filtered]
    failing(make_orders(5), ["validate", "charge"], ["ecommerce-order", "returns"])
    for url in urls:
        client.get(url)
    few = [queries_for(client, url) for url in urls]
    failing(make_orders(45), ["validate", "charge", "fulfil"], ["ecommerce-order", "returns"])
    many = [queries_for(client, url) for url in urls]
    assert len(client.get(filtered).context["cl"].result_list) == 50
    assert few == many
    assert max(many) <= 12


def test_filtered_order_list_counts_without_distinct(admin_client_for, support, make_orders):
    make_orders(3)
    client = admin_client_for(support)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("admin:orders_order_changelist") + "?status__exact=failed")
    orders = [q["sql"].upper() for q in captured if "orders_order" in q["sql"]]
    assert any("COUNT(" in sql for sql in orders)
    assert not any("DISTINCT" in sql for sql in orders)
