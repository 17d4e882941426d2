"""Business keys (contract section 6): `payload.<path>=<value>` and `data.<path>=<value>`
select orders in the API's list, its bulk reprocess and the `reprocess_orders` command, on
SQLite and PostgreSQL alike, and read the GIN indexes on PostgreSQL."""

from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from orders.filters import orders_matching
from orders.models import Order
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order

pytestmark = pytest.mark.django_db


def listed(client, **params) -> list[str]:
    response = client.get("/api/orders/?" + urlencode(params, doseq=True))
    assert response.status_code == 200, response.content
    return sorted(order["order_id"] for order in response.json()["results"])


def order_with(order_id: str, status: str = "failed", *, payload=None, data=None) -> Order:
    fields = {"payload": payload} if payload is not None else {}
    return shop_order(order_id, status, data=data or {}, **fields)


@pytest.fixture
def customers(shop):
    order_with("A-1", payload={"sku": "mug", "qty": 1, "customer": {"id": "C-42"}})
    order_with("A-2", payload={"sku": "mug", "qty": 2, "customer": {"id": "C-43"}})
    order_with("A-3", "completed", payload={"sku": "tee", "qty": 1, "customer": {"id": "C-42"}})
    order_with("A-4", payload={"sku": "mug", "qty": 1}, data={"tracking": "TRK-9"})


# The API's list.


def test_a_payload_key_selects_the_orders_holding_that_value(support, customers):
    assert listed(support, **{"payload.customer.id": "C-42"}) == ["A-1", "A-3"]
    assert listed(support, **{"payload.customer.id": "C-4"}) == []
    assert listed(support, **{"payload.customer": "C-42"}) == []


def test_a_data_key_selects_by_the_saved_data(support, customers):
    assert listed(support, **{"data.tracking": "TRK-9"}) == ["A-4"]
    assert listed(support, **{"payload.tracking": "TRK-9"}) == []


def test_keys_and_filters_must_all_match_and_a_repeated_key_any_of_its_values(support, customers):
    assert listed(support, **{"payload.customer.id": "C-42", "status": "failed"}) == ["A-1"]
    assert listed(support, **{"payload.customer.id": "C-42", "payload.sku": "tee"}) == ["A-3"]
    assert listed(support, **{"payload.customer.id": ["C-42", "C-43"], "payload.qty": "1"}) == [
        "A-1",
        "A-3",
    ]


def test_a_number_matches_the_json_number_and_the_same_text(support, shop):
    order_with("N-int", payload={"qty": 2})
    order_with("N-float", payload={"qty": 2.0})
    order_with("N-text", payload={"qty": "2"})
    order_with("N-other", payload={"qty": "02"})
    order_with("N-true", payload={"qty": True})

    assert listed(support, **{"payload.qty": "2"}) == ["N-float", "N-int", "N-text"]
    assert listed(support, **{"payload.qty": "02"}) == ["N-other"]
    assert listed(support, **{"payload.qty": "2.5"}) == []


def test_true_false_and_null_match_those_json_values_and_the_same_text(support, shop):
    order_with("B-true", payload={"gift": True})
    order_with("B-text", payload={"gift": "true"})
    order_with("B-one", payload={"gift": 1})
    order_with("B-false", payload={"gift": False})
    order_with("B-null", payload={"gift": None})
    order_with("B-missing", payload={"other": None})

    assert listed(support, **{"payload.gift": "true"}) == ["B-text", "B-true"]
    assert listed(support, **{"payload.gift": "1"}) == ["B-one"]
    assert listed(support, **{"payload.gift": "false"}) == ["B-false"]
    assert listed(support, **{"payload.gift": "null"}) == ["B-null"]
    assert listed(support, **{"payload.gift": "True"}) == []


def test_only_a_value_at_the_path_matches_not_objects_or_lists_there(support, shop):
    order_with("L-list", payload={"tags": ["vip", "new"]})
    order_with("L-object", payload={"tags": {"vip": "yes"}})
    order_with("L-text", payload={"tags": "vip"})

    assert listed(support, **{"payload.tags": "vip"}) == ["L-text"]
    assert listed(support, **{"payload.tags.vip": "yes"}) == ["L-object"]


def test_keys_and_values_beyond_ascii_and_with_dots_in_values_match(support, shop):
    order_with("U-1", payload={"Käufer": {"name": "Müller", "mail": "a.b@example.com"}})
    order_with("U-2", payload={"Käufer": {"name": "Muller"}})

    assert listed(support, **{"payload.Käufer.name": "Müller"}) == ["U-1"]
    assert listed(support, **{"payload.Käufer.mail": "a.b@example.com"}) == ["U-1"]


def test_an_empty_value_matches_the_empty_text(support, shop):
    order_with("E-1", payload={"note": ""})
    order_with("E-2", payload={"note": "x"})

    assert listed(support, **{"payload.note": ""}) == ["E-1"]


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("payload.", "x", "an empty key in the path"),
        ("payload..id", "x", "an empty key in the path"),
        ("data.items.0.sku", "x", '"0" is a list position'),
        ('payload.a"b', "x", "contains a quote"),
        ("payload." + "k" * 201, "x", "the path is longer than 200 characters"),
        ("payload.id", "v" * 1001, "the value is longer than 1000 characters"),
    ],
)
def test_a_bad_business_key_is_a_400_naming_the_parameter(support, shop, name, value, reason):
    response = support.get("/api/orders/?" + urlencode({name: value}))

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error.startswith(f"{name}: ")
    assert reason in error


def test_a_nul_in_a_business_key_is_a_400(support, shop):
    response = support.get("/api/orders/?payload.id%00=x")
    assert response.status_code == 400
    response = support.get("/api/orders/?payload.id=x%00")
    assert response.status_code == 400
    assert response.json()["errors"] == ["payload.id: contains a NUL character"]


def test_at_most_twenty_business_keys(support, shop):
    keys = {f"payload.k{number}": "x" for number in range(21)}
    response = support.get("/api/orders/?" + urlencode(keys))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "business keys: at most 20 (payload.<path> and data.<path>)"
    ]


def test_the_list_describes_business_keys_in_the_openapi_schema(support):
    schema = support.get("/api/schema/?format=json").json()
    description = schema["paths"]["/api/orders/"]["get"]["description"]
    assert "`payload.<path>`" in description and "`data.<path>`" in description


# The bulk reprocess.


def counts(response) -> tuple[int, int]:
    return response.json()["count"], response.json()["skipped"]


def test_bulk_reprocess_selects_by_a_business_key_in_the_body(support, customers):
    response = support.post(
        "/api/orders/reprocess/",
        {"payload.customer.id": "C-42", "from": "failed"},
        format="json",
    )

    assert response.status_code == 202, response.content
    assert counts(response) == (1, 1)
    assert Order.objects.get(order_id="A-1").status == "pending"
    assert Order.objects.get(order_id="A-2").status == "failed"


def test_bulk_reprocess_takes_json_values_and_lists_of_them(support, shop):
    order_with("J-1", payload={"qty": 2, "gift": True})
    order_with("J-2", payload={"qty": 3, "gift": True})
    order_with("J-3", payload={"qty": 2, "gift": False})

    response = support.post(
        "/api/orders/reprocess/",
        {"payload.qty": [2, 3], "payload.gift": True, "from": "start"},
        format="json",
    )

    assert counts(response) == (2, 0)
    assert Order.objects.get(order_id="J-3").status == "failed"


def test_bulk_reprocess_refuses_an_object_as_a_key_value(support, shop):
    response = support.post(
        "/api/orders/reprocess/", {"payload.customer": {"id": "C-42"}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "payload.customer: must be text, a number, true, false or null"
    ]


def test_bulk_reprocess_names_a_bad_key_path(support, shop):
    response = support.post("/api/orders/reprocess/", {"data.items.0": "x"}, format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error.startswith('data.items.0: "0" is a list position')


def test_bulk_reprocess_refuses_order_ids_with_a_business_key(support, customers):
    response = support.post(
        "/api/orders/reprocess/",
        {"order_ids": ["A-1"], "payload.customer.id": "C-42"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == ["give either order_ids or filters, not both"]


# The command.


def reprocess_orders(*args) -> str:
    out = StringIO()
    call_command("reprocess_orders", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_the_command_selects_by_business_keys(customers):
    output = reprocess_orders(
        "--key", "payload.customer.id=C-42", "--key", "payload.customer.id=C-43", "--from", "start"
    )

    assert output.startswith("Reprocessed 2 orders; skipped 1 ")
    assert Order.objects.get(order_id="A-3").status == "completed"
    assert Order.objects.get(order_id="A-4").status == "failed"


def test_the_command_refuses_a_key_without_a_value(customers):
    with pytest.raises(CommandError, match=r"--key: \"payload.customer.id\" is not payload"):
        reprocess_orders("--key", "payload.customer.id", "--from", "failed")


def test_the_command_names_a_bad_key_path(customers):
    with pytest.raises(CommandError, match="payload..id: an empty key in the path"):
        reprocess_orders("--key", "payload..id=x", "--from", "failed")


# PostgreSQL: the GIN indexes of migration 0007.


def fill_customers(count: int) -> None:
    """`count` failed orders K-00001 … with customers C-1 … C-5000 and saved tracking codes,
    in one statement, beside one made by the webhook's service."""
    first = shop_order("first")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_order (
                order_id, workflow, snapshot_id, payload, data, status, current_step, error,
                failed_step, run, attempt, steps_in_run, step_state, resume_point,
                cancel_requested, created_at, updated_at
            )
            SELECT 'K-' || lpad(g::text, 5, '0'), workflow, snapshot_id,
                   jsonb_build_object('sku', 'mug', 'qty', 1 + g %% 5,
                                      'customer', jsonb_build_object('id', 'C-' || g %% 5000)),
                   jsonb_build_object('tracking', 'TRK-' || g),
                   'failed', 'charge', '', 'charge', 1, 0, 0, '{}', '{}', false,
                   created_at - interval '1 second' * g, updated_at
            FROM orders_order, generate_series(1, %s) AS g
            WHERE id = %s
            """,
            [count, first.pk],
        )
        # As autovacuum would leave the table: the GIN indexes' pending lists merged.
        cursor.execute("SELECT gin_clean_pending_list('order_payload_gin')")
        cursor.execute("SELECT gin_clean_pending_list('order_data_gin')")
        cursor.execute("ANALYZE orders_order")


def plan(queryset) -> str:
    lines = []
    with connection.cursor() as cursor:
        for sql, params in (
            queryset.order_by().values("pk").query.sql_with_params(),
            queryset.order_by("-created_at", "-id")[:50].query.sql_with_params(),
        ):
            cursor.execute(f"EXPLAIN {sql}", params)
            lines += [row[0] for row in cursor.fetchall()]
    return "\n".join(lines)


@pytest.mark.postgres
def test_business_keys_read_the_gin_indexes_on_postgresql(shop):
    if connection.vendor != "postgresql":
        pytest.skip("the GIN indexes are PostgreSQL's (run with DATABASE_URL=postgres://...)")
    fill_customers(50_000)

    customer = orders_matching({"payload.customer.id": "C-42"})
    tracking = orders_matching({"data.tracking": "TRK-4242", "status": "failed"})
    number = orders_matching({"payload.customer.id": "42"})  # the string or the number

    assert "order_payload_gin" in plan(customer), plan(customer)
    assert "order_data_gin" in plan(tracking), plan(tracking)
    assert "BitmapOr" in plan(number) and "order_payload_gin" in plan(number), plan(number)
    assert "Seq Scan" not in plan(customer) + plan(tracking) + plan(number)
    assert customer.count() == 10
    assert [order.order_id for order in tracking] == ["K-04242"]
