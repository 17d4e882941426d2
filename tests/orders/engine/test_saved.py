"""A step that saves something logs what it saved, with its outcome: the order page shows
the data before and after each step from these entries."""

from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from hosts.rules import current_rules
from orders.claims import claim_due_orders
from orders.engine.config import EngineConfig
from orders.engine.runner import advance_order
from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "tok-5e5e5e5e5e5e"


def log_of(order: Order) -> list[tuple]:
    return list(order.log.order_by("id").values_list("step", "kind", "response"))


def test_a_step_that_saves_logs_what_it_saved_after_its_attempt(server):
    server.route("POST", "/quote", Reply(200, {"total": 50}))
    server.route("POST", "/mail", Reply(200, {"id": "m-1"}))
    calls = [api_call("quote", server.url + "/quote"), api_call("mail", server.url + "/mail")]
    steps = [
        {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
        {"id": "mail", "call": "mail"},
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED
    assert [(step, kind) for step, kind, _ in log_of(order)] == [
        ("quote", "attempt"),
        ("quote", "step"),
        ("mail", "attempt"),  # saves nothing: no entry
    ]
    assert log_of(order)[1][2] == {"saved": {"total": 50}}


def test_what_a_step_saved_is_in_the_apis_log_as_a_step_entry(server, django_user_model):
    server.route("POST", "/quote", Reply(200, {"total": 50}))
    steps = [{"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}}]
    order = process(make_order(steps, [api_call("quote", server.url + "/quote")]))
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_superuser("root", password="x"))

    log = client.get(f"/api/orders/{order.order_id}/").json()["log"]

    assert [(entry["kind"], entry["response"]) for entry in log][1:] == [
        ("step", {"saved": {"total": 50}})
    ]
    assert log[0]["response"].keys() == {"status", "headers", "body"}  # attempts unchanged


def test_a_secret_saved_by_mistake_is_logged_masked(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    server.route("POST", "/a", Reply(200, {}))
    steps = [{"id": "a", "call": "a", "save": {"key": "{{ secrets.PAY_TOKEN }}"}}]
    order = process(make_order(steps, [api_call("a", server.url + "/a")]))

    (saved,) = [response for _, kind, response in log_of(order) if kind == "step"]
    assert SECRET not in str(saved)
    assert saved == {"saved": order.data}


def test_a_long_saved_value_is_logged_cut_and_named(server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, log_body_bytes=40)
    server.route("POST", "/a", Reply(200, {"text": "x" * 200}))
    save = {"text": "{{ response.body.text }}", "n": "{{ 7 }}"}
    order = process(
        make_order([{"id": "a", "call": "a", "save": save}], [api_call("a", server.url + "/a")])
    )

    assert order.data == {"text": "x" * 200, "n": 7}
    (saved,) = [response for _, kind, response in log_of(order) if kind == "step"]
    assert saved["truncated"] == ["text"]
    assert saved["saved"]["n"] == 7
    assert saved["saved"]["text"].startswith("x" * 40) and "truncated" in saved["saved"]["text"]


def test_a_parallel_step_logs_what_its_branches_saved_once_at_the_join(server):
    server.route("POST", "/ship", Reply(200, {"tracking": "T-1"}))
    server.route("POST", "/mail", Reply(200, {"id": "M-1"}))
    calls = [api_call("ship", server.url + "/ship"), api_call("mail", server.url + "/mail")]
    steps = [
        {
            "id": "fulfil",
            "parallel": [
                {
                    "id": "ship",
                    "call": "ship",
                    "save": {"tracking": "{{ response.body.tracking }}"},
                },
                {"id": "mail", "call": "mail", "save": {"mail": "{{ response.body.id }}"}},
            ],
        }
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED
    notes = [(step, response) for step, kind, response in log_of(order) if kind == "step"]
    assert notes == [("fulfil", {"saved": {"tracking": "T-1", "mail": "M-1"}})]


@pytest.mark.postgres
def test_logging_what_steps_saved_adds_no_round_trip_on_postgresql(server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement writes are PostgreSQL's (DATABASE_URL=postgres://...)")
    # The breaker's counts go to the database apart from the steps, at most once a second.
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, breaker_min_calls=0)
    for path in ("/a", "/b", "/c"):
        server.route("POST", path, Reply(200, {"ref": path}))
    api_calls = [api_call(name, f"{server.url}/{name}") for name in "abc"]
    steps = [
        {"id": name, "call": name, "save": {name: "{{ response.body.ref }}"}} for name in "abc"
    ]
    order = make_order(steps, api_calls)
    (claim,) = claim_due_orders(limit=1, lease_seconds=60)
    config = EngineConfig.from_settings()
    config.workflow(order.snapshot_id)
    current_rules()  # the hosts' rows: read once a second per process, not once per step

    with CaptureQueriesContext(connection) as queries:
        assert advance_order(claim.order_pk, claim.token, config) == "completed"

    statements = [query["sql"].split()[0] for query in queries]
    assert statements == ["WITH", "INSERT", "WITH", "WITH", "WITH"], statements
    order.refresh_from_db()
    assert order.data == {"a": "/a", "b": "/b", "c": "/c"}
    assert [kind for _, kind, _ in log_of(order)] == ["attempt", "step"] * 3
