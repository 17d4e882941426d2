"""The engine driving orders through blueprints, against a real local HTTP server."""

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)


def test_lone_expressions_keep_their_json_type_and_text_is_joined(server):
    server.route("POST", "/quote", Reply(200, {"total": 12.5}))
    call = api_call(
        "shop.quote",
        server.url + "/quote",
        body={
            "qty": "{{ input.qty }}",
            "lines": "{{ input.lines }}",
            "label": "{{ input.sku }} x{{ input.qty }}",
            "code": "{{ input.code }}",
        },
    )
    payload = {"qty": 3, "lines": [{"sku": "a"}], "sku": "TEE", "code": "00123"}
    order = process(make_order([{"id": "quote", "call": "shop.quote"}], [call], payload=payload))

    assert order.status == Order.Status.COMPLETED
    body = server.requests_to("/quote")[0].body
    assert body == {"qty": 3, "lines": [{"sku": "a"}], "label": "TEE x3", "code": "00123"}


def test_save_merges_response_values_into_data_for_later_steps(server):
    server.route("POST", "/quote", Reply(200, {"total": 40, "currency": "EUR"}))
    server.route("POST", "/charge", Reply(201, {"id": "ch_1"}))
    calls = [
        api_call("quote", server.url + "/quote", save={"total": "{{ response.body.total }}"}),
        api_call("charge", server.url + "/charge", body={"amount": "{{ data.total }}"}),
    ]
    steps = [
        {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
        {"id": "charge", "call": "charge", "save": {"charge_id": "{{ response.body.id }}"}},
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED
    assert order.data == {"total": 40, "charge_id": "ch_1"}
    assert server.requests_to("/charge")[0].body == {"amount": 40}


def test_every_name_is_in_scope(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_API_TOKEN", "s3cret-value")
    server.route("POST", "/first", Reply(200, {"n": 1}))
    server.route("POST", "/echo", Reply(200, {}))
    calls = [
        api_call("first", server.url + "/first"),
        api_call(
            "echo",
            server.url + "/echo",
            headers={"Authorization": "Bearer {{ secrets.API_TOKEN }}"},
            body={
                "input": "{{ input.sku }}",
                "data": "{{ data.n }}",
                "order": "{{ order.order_id }}/{{ order.workflow }}/{{ order.run }}",
                "created": "{{ order.created_at[:4] }}",
                "params": "{{ params.template }}",
            },
        ),
    ]
    steps = [
        {"id": "first", "call": "first", "save": {"n": "{{ response.body.n }}"}},
        {"id": "echo", "call": "echo", "params": {"template": "{{ input.sku | lower }}"}},
    ]
    order = process(make_order(steps, calls, payload={"sku": "TEE"}, order_id="o-scope"))

    assert order.status == Order.Status.COMPLETED, order.error
    request = server.requests_to("/echo")[0]
    assert request.headers["Authorization"] == "Bearer s3cret-value"
    assert request.body == {
        "input": "TEE",
        "data": 1,
        "order": "o-scope/flow/1",
        "created": str(order.created_at.year),
        "params": "tee",
    }


def test_success_when_decides_success(server):
    server.route("POST", "/lookup", Reply(404, {"found": False}))
    server.route("POST", "/check", Reply(200, {"ok": False}))
    calls = [
        api_call("lookup", server.url + "/lookup", success_when="{{ response.status == 404 }}"),
        api_call("check", server.url + "/check", success_when="{{ response.body.ok }}"),
    ]
    steps = [{"id": "lookup", "call": "lookup"}, {"id": "check", "call": "check"}]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.FAILED
    assert order.current_step == "check"
    assert [entry.outcome for entry in attempts(order)] == ["succeeded", "failed"]


@pytest.mark.parametrize(("total", "expected"), [(1500, "review"), (20, "charge")])
def test_choice_takes_the_first_true_branch_else_default(server, total, expected):
    for path in ("review", "charge"):
        server.route("POST", f"/{path}", Reply(200, {}))
    calls = [api_call(name, f"{server.url}/{name}") for name in ("review", "charge")]
    steps = [
        {
            "id": "route",
            "choice": [{"when": "{{ input.total > 1000 }}", "next": "review"}],
            "default": "charge",
        },
        {"id": "charge", "call": "charge", "end": "completed"},
        {"id": "review", "call": "review", "end": "completed"},
    ]
    order = process(make_order(steps, calls, payload={"total": total}))

    assert order.status == Order.Status.COMPLETED
    assert [entry.step for entry in attempts(order)] == [expected]


def test_parallel_branches_run_at_the_same_time_and_join(server):
    barrier = threading.Barrier(2, timeout=5)

    def meet(body):
        def handler(_request):
            barrier.wait()  # both branches must be in flight at once to get past this
            return Reply(200, body)

        return handler

    server.route("POST", "/ship", meet({"tracking": ["TRK1"]}))
    server.route("POST", "/mail", meet({"queued": True}))
    calls = [api_call("ship", server.url + "/ship"), api_call("mail", server.url + "/mail")]
    steps = [
        {
            "id": "fulfil",
            "parallel": [
                {
                    "id": "ship",
                    "call": "ship",
                    "save": {"tracking": "{{ response.body.tracking | first }}"},
                },
                {"id": "mail", "call": "mail", "params": {"template": "order-confirmed"}},
            ],
            "end": "completed",
        },
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"tracking": "TRK1"}
    assert server.max_in_flight == 2


def test_parallel_fails_after_all_branches_finish_when_one_fails(server):
    server.route("POST", "/ship", Reply(400, {"error": "bad address"}))
    server.route("POST", "/mail", Reply(200, {}))
    calls = [api_call("ship", server.url + "/ship"), api_call("mail", server.url + "/mail")]
    steps = [
        {
            "id": "fulfil",
            "parallel": [{"id": "ship", "call": "ship"}, {"id": "mail", "call": "mail"}],
            "on_failed": "oops",
        },
        {"id": "done", "end": "completed"},
        {"id": "oops", "end": "failed", "error": "could not fulfil"},
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.FAILED
    assert order.error == "could not fulfil"
    assert len(server.requests_to("/mail")) == 1
    assert {entry.step: entry.outcome for entry in attempts(order)} == {
        "fulfil.ship": "failed",
        "fulfil.mail": "succeeded",
    }


def test_on_failed_path_sees_the_error(server):
    server.route("POST", "/charge", Reply(402, {"error": "declined"}))
    server.route("POST", "/refund", Reply(200, {}))
    calls = [
        api_call("charge", server.url + "/charge"),
        api_call(
            "notify",
            server.url + "/refund",
            body={"why": "{{ error.step }}: {{ error.message }}", "status": "{{ error.status }}"},
        ),
    ]
    steps = [
        {"id": "charge", "call": "charge", "on_failed": "notify"},
        {"id": "shipped", "end": "completed"},
        {"id": "notify", "call": "notify", "end": "failed"},
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.FAILED
    assert server.requests_to("/refund")[0].body == {
        "why": "charge: HTTP 402: declined",
        "status": 402,
    }


def test_end_step_finishes_with_its_error_text(server):
    order = process(make_order([{"id": "reject", "end": "failed", "error": "not allowed"}]))

    assert order.status == Order.Status.FAILED
    assert order.error == "not allowed"
    assert order.finished_at is not None


def test_after_the_last_step_the_order_is_completed(server):
    server.route("POST", "/a", Reply(200, {}))
    order = process(make_order([{"id": "a", "call": "a"}], [api_call("a", server.url + "/a")]))

    assert order.status == Order.Status.COMPLETED
    assert order.error == ""


def test_next_jumps_over_steps(server):
    server.route("POST", "/a", Reply(200, {}))
    server.route("POST", "/b", Reply(200, {}))
    calls = [api_call("a", server.url + "/a"), api_call("b", server.url + "/b")]
    steps = [
        {"id": "a", "call": "a", "next": "last"},
        {"id": "b", "call": "b"},
        {"id": "last", "end": "completed"},
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.COMPLETED
    assert server.requests_to("/b") == []


def test_loop_guard_fails_a_run_with_too_many_steps(server, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, max_steps_per_run=5)
    steps = [
        {"id": "again", "choice": [{"when": "{{ true }}", "next": "again"}], "default": "again"},
    ]
    order = process(make_order(steps))

    assert order.status == Order.Status.FAILED
    assert "more than 5 steps" in order.error
    assert "STATE_MANAGER_MAX_STEPS_PER_RUN" in order.error
    assert order.log.count() == 5


def test_a_broken_expression_fails_the_step_naming_it(server):
    server.route("POST", "/a", Reply(200, {}))
    calls = [api_call("a", server.url + "/a", body={"x": "{{ input.missing.deeper }}"})]
    order = process(make_order([{"id": "a", "call": "a"}], calls))

    assert order.status == Order.Status.FAILED
    assert "input.missing.deeper" in order.error
    assert server.received == []


def test_non_json_response_body_is_kept_as_text(server):
    server.route("POST", "/text", Reply(200, "plain words"))
    calls = [api_call("text", server.url + "/text", save={"said": "{{ response.body }}"})]
    order = process(make_order([{"id": "text", "call": "text"}], calls))

    assert order.data == {"said": "plain words"}
    assert attempts(order)[0].response["body"] == "plain words"


def test_log_records_request_response_duration_and_outcome(server):
    server.route("POST", "/a", Reply(201, {"id": 7}))
    calls = [api_call("a", server.url + "/a", body={"n": 1})]
    order = process(make_order([{"id": "a", "call": "a"}], calls))

    entry = attempts(order)[0]
    assert entry.run == 1 and entry.attempt == 1 and entry.outcome == "succeeded"
    assert entry.request["method"] == "POST"
    assert entry.request["url"] == server.url + "/a"
    assert entry.request["body"] == {"n": 1}
    assert entry.response["status"] == 201
    assert entry.response["body"] == {"id": 7}
    assert entry.duration_ms is not None


def test_cancel_requested_while_running_stops_before_the_next_step(server):
    order_box = {}

    def slow_then_cancel(_request):
        Order.objects.filter(pk=order_box["pk"]).update(cancel_requested=True)
        connection.close()
        return Reply(200, {})

    server.route("POST", "/a", slow_then_cancel)
    server.route("POST", "/b", Reply(200, {}))
    calls = [api_call("a", server.url + "/a"), api_call("b", server.url + "/b")]
    order = make_order([{"id": "a", "call": "a"}, {"id": "b", "call": "b"}], calls)
    order_box["pk"] = order.pk
    order = process(order)

    assert order.status == Order.Status.CANCELLED
    assert server.requests_to("/b") == []


def test_cancel_requested_while_running_cancels_instead_of_waiting_for_a_retry(server):
    order_box = {}

    def cancel_then_fail(_request):
        Order.objects.filter(pk=order_box["pk"]).update(cancel_requested=True)
        connection.close()
        return Reply(503, {}, headers={"Retry-After": "600"})

    server.route("POST", "/a", cancel_then_fail)
    calls = [api_call("a", server.url + "/a", retry={"max_attempts": 3})]
    order = make_order([{"id": "a", "call": "a"}], calls)
    order_box["pk"] = order.pk
    order = process(order)

    assert order.status == Order.Status.CANCELLED
    assert order.due_at is None and order.claim_token is None


def test_cancel_requested_during_a_step_is_seen_before_an_inline_retry_is_sent(server):
    order_box = {}

    def cancel_then_fail(_request):
        Order.objects.filter(pk=order_box["pk"]).update(cancel_requested=True)
        connection.close()
        return Reply(503, {})

    server.route("POST", "/a", cancel_then_fail)
    retry = {"max_attempts": 3, "backoff_seconds": 0.01}
    order = make_order([{"id": "a", "call": "a"}], [api_call("a", server.url + "/a", retry=retry)])
    order_box["pk"] = order.pk
    order = process(order)

    assert order.status == Order.Status.CANCELLED
    assert len(server.requests_to("/a")) == 1
    assert list(order.log.filter(kind="attempt").values_list("outcome", flat=True)) == ["retrying"]


def test_an_internal_error_is_tried_again_a_minute_later_and_fails_the_order_the_third_time():
    # A snapshot naming an API call it does not hold: validation keeps these out, so this
    # stands for any bug in the engine.
    order = make_order([{"id": "a", "call": "nowhere"}], [])
    for attempt in range(1, 4):
        Order.objects.filter(pk=order.pk).update(due_at=timezone.now())
        order = process(order)
        if attempt < 3:
            assert order.status == Order.Status.WAITING
            assert order.due_at > timezone.now() + timedelta(seconds=40)  # 45-75 s, jittered
            assert order.error.endswith("tried again in about a minute")

    assert order.status == Order.Status.FAILED
    assert order.error.startswith("internal error: KeyError: 'nowhere' (3 internal errors")
    assert order.log.filter(error__startswith="internal error:").count() == 3
    assert order.resume_point == {"step": "a", "data": {}}
