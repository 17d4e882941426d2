"""`orders.engine.dry_run` on its own: a blueprint walked for sample data, in memory.

No database (no `db` fixture: any query would fail) and no HTTP: the samples answer.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from orders.engine.config import EngineConfig
from orders.engine.dry_run import MAX_ATTEMPTS, DryRunInvalid, dry_run
from tests.blueprints import definitions

SECRETS = {
    "SHOP_URL": "https://shop.example",
    "PAYMENTS_URL": "https://pay.example",
    "PAYMENTS_TOKEN": "tok-s3cret/+=",
    "SHIPPING_URL": "https://ship.example",
    "MAIL_URL": "https://mail.example",
    "OPS_URL": "https://ops.example",
}
CONFIG = EngineConfig(
    max_steps_per_run=100,
    outbound_allow=[],
    max_inline_wait_seconds=5.0,
    public_url="https://sm.example",
    log_body_bytes=4096,
    token_key=b"k",
    secrets=SECRETS,
)
PAYLOAD = {"sku": "TEE", "qty": 2, "email": "ann@example.com"}
QUOTED = {"validate": {"body": {"total": 50}}}
CHARGED = {"status": 201, "body": {"id": "ch_1"}}
SHIPPED = {"fulfil.ship": {"status": 201, "body": {"tracking": ["T-1", "T-2"]}}}


def definition(blueprint: dict | None = None, **api_call_changes: dict) -> dict:
    """The contract's e-commerce example as a snapshot's definition."""
    api_calls = {call["slug"]: copy.deepcopy(call) for call in definitions.API_CALLS}
    for slug, changes in api_call_changes.items():
        api_calls[slug.replace("_", ".")].update(changes)
    return {"blueprint": blueprint or definitions.blueprint(), "api_calls": api_calls}


def walk(responses: dict, *, blueprint=None, payload=None, config=CONFIG, **changes):
    return dry_run(
        definition(blueprint, **changes),
        payload=PAYLOAD if payload is None else payload,
        responses=responses,
        config=config,
    )


def path(result) -> list[str]:
    return [visit.step for visit in result.steps]


def test_the_happy_path_ends_completed_with_every_step_saved():
    result = walk({**QUOTED, "charge": CHARGED, **SHIPPED})

    assert path(result) == ["validate", "route", "charge", "fulfil"]
    assert (result.end.status, result.end.step, result.end.error) == ("completed", "fulfil", "")
    assert result.end.data == {"total": 50, "charge_id": "ch_1", "tracking": "T-1"}
    validate, route, charge, fulfil = result.steps
    assert validate.data == {"total": 50} and validate.next == "route"
    assert route.notes == ["default: next charge"] and route.attempts == []
    assert charge.attempts[0].request["body"] == {
        "amount": 50,
        "currency": "EUR",
        "reference": "dry-run",
    }
    assert charge.attempts[0].response == {"status": 201, "headers": {}, "body": {"id": "ch_1"}}
    assert [a.step for a in fulfil.attempts] == ["fulfil.ship", "fulfil.mail"]
    assert fulfil.attempts[1].request["body"] == {
        "to": "ann@example.com",
        "template": "order-confirmed",
    }


def test_a_failed_step_takes_its_on_failed_path_and_ends_there():
    result = walk({**QUOTED, "charge": {"status": 402, "body": {"error": "declined"}}})

    assert path(result) == ["validate", "route", "charge", "reject"]
    charge = result.steps[2]
    assert (charge.outcome, charge.error, charge.next) == ("failed", "HTTP 402: declined", "reject")
    assert len(charge.attempts) == 1  # a 4xx is not retried
    assert result.end.status == "failed"
    assert result.end.error == "order could not be charged"


def test_a_failed_step_without_on_failed_fails_the_order_naming_it():
    blueprint = definitions.blueprint()
    del blueprint["steps"][0]["on_failed"]

    result = walk({"validate": {"status": 404}}, blueprint=blueprint)

    assert path(result) == ["validate"]
    assert (result.end.status, result.end.error) == ("failed", 'step "validate": HTTP 404')


def test_the_on_failed_path_sees_the_error_that_led_to_it():
    blueprint = definitions.blueprint()
    blueprint["steps"][-1] = {
        "id": "reject",
        "call": "ops.ticket",
        "params": {"why": "{{ error.step }}: {{ error.message }}"},
        "end": "failed",
    }
    ops_ticket = {"body": {"why": "{{ params.why }}"}}

    result = walk({**QUOTED, "charge": {"status": 402}}, blueprint=blueprint, ops_ticket=ops_ticket)

    assert result.steps[-1].attempts[0].request["body"] == {"why": "charge: HTTP 402"}
    assert (result.end.status, result.end.error) == ("failed", 'step "reject" ended the order')


def test_a_choice_follows_the_sample_data():
    result = walk({"validate": {"body": {"total": 1200}}})

    assert path(result) == ["validate", "route", "review"]
    assert result.steps[1].notes == ["choice[0]: next review"]
    assert (result.end.status, result.end.step) == ("completed", "review")


def test_default_samples_answer_200_with_an_empty_object():
    result = walk({})

    validate = result.steps[0]
    assert validate.attempts[0].response == {"status": 200, "headers": {}, "body": {}}
    # The blueprint saves `response.body.total`, which the empty body lacks.
    assert validate.outcome == "failed" and validate.error.startswith("save:")
    assert result.end.step == "reject"


def test_a_failing_parallel_branch_fails_the_parallel_step():
    result = walk(
        {**QUOTED, "charge": CHARGED, **SHIPPED, "fulfil.mail": {"status": 500}},
        mail_send={"retry": {"max_attempts": 2, "backoff_seconds": 0.1}},
    )

    fulfil = result.steps[-1]
    assert (fulfil.step, fulfil.outcome, fulfil.error) == ("fulfil", "failed", "mail: HTTP 500")
    assert fulfil.saved == {} and fulfil.next is None
    assert [(a.step, a.attempt, a.outcome) for a in fulfil.attempts] == [
        ("fulfil.ship", 1, "succeeded"),
        ("fulfil.mail", 1, "retrying"),
        ("fulfil.mail", 2, "failed"),
    ]
    assert (result.end.status, result.end.error) == ("failed", 'step "fulfil": mail: HTTP 500')


def test_retries_are_shown_not_slept_and_a_long_wait_leaves_the_order_waiting():
    # Backoff 1, 2, 4, 8 s, each with jitter down to half: the first three up to 4 s.
    config = dataclasses.replace(CONFIG, max_inline_wait_seconds=4.0)
    started = time.monotonic()

    result = walk({**QUOTED, "charge": {"status": 503}}, config=config)

    assert time.monotonic() - started < 2  # none of the waits was slept
    charge = result.steps[2]
    assert [a.outcome for a in charge.attempts] == ["retrying"] * 4 + ["failed"]
    assert charge.retries == 4 and charge.next == "reject"
    waits = [(a.waits, a.wait_seconds) for a in charge.attempts[:4]]
    assert [w[0] for w in waits] == ["in the turn"] * 3 + ["order waiting"]
    assert 0.5 <= waits[0][1] <= 1 and 4 <= waits[3][1] <= 8  # backoff with jitter
    assert charge.attempts[4].wait_seconds is None


def test_a_retry_after_is_honoured_as_a_wait_until_due():
    sample = {"status": 503, "headers": {"Retry-After": "120"}}

    result = walk({**QUOTED, "charge": sample}, payments_charge={"retry": {}})

    attempt = result.steps[2].attempts[0]
    assert 120.0 <= attempt.wait_seconds <= 132.0  # the Retry-After, plus jitter
    assert attempt.waits == "order waiting"


def test_a_retry_after_given_as_an_http_date_is_honoured_as_the_real_run_does():
    in_two_minutes = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    sample = {"status": 429, "headers": {"retry-after": in_two_minutes}}

    result = walk({**QUOTED, "charge": sample}, payments_charge={"retry": {}})

    attempt = result.steps[2].attempts[0]
    assert 118.0 <= attempt.wait_seconds <= 132.0  # until that date (to the second), + jitter
    assert attempt.waits == "order waiting"


def test_a_list_of_samples_answers_attempt_after_attempt():
    result = walk(
        {**QUOTED, "charge": [{"status": 503}, {"status": 201, "body": {"id": "c"}}], **SHIPPED}
    )

    charge = result.steps[2]
    assert [(a.response["status"], a.outcome) for a in charge.attempts] == [
        (503, "retrying"),
        (201, "succeeded"),
    ]
    assert result.end.status == "completed"


def callback_blueprint() -> dict:
    blueprint = definitions.blueprint()
    blueprint["steps"][2].update(
        wait_for_callback={"timeout_seconds": 3600},
        save={"charge_id": "{{ callback.data.id | default('none') }}"},
    )
    return blueprint


def test_a_callback_step_notes_the_wait_and_goes_on_as_a_success_by_default():
    result = walk({**QUOTED, **SHIPPED}, blueprint=callback_blueprint())

    charge = result.steps[2]
    assert charge.attempts[0].outcome == "waiting"
    assert charge.notes == [
        "the order would wait up to 3600 s for a callback to "
        "https://sm.example/api/callbacks/dry-run.charge/",
        "callback received: success",
    ]
    assert charge.saved == {"charge_id": "none"}
    assert result.end.status == "completed"


@pytest.mark.parametrize(
    "callback, error",
    [
        ({"outcome": "failure"}, "the callback reported a failure"),
        ({"outcome": "timeout"}, "no callback within 3600 seconds"),
    ],
)
def test_a_callback_sample_can_fail_the_step(callback, error):
    result = walk({**QUOTED, "charge": {"callback": callback}}, blueprint=callback_blueprint())

    charge = result.steps[2]
    assert (charge.outcome, charge.error, charge.next) == ("failed", error, "reject")


def test_callback_data_reaches_the_steps_save():
    sample = {"callback": {"outcome": "success", "data": {"id": "ch_9"}}}

    result = walk({**QUOTED, "charge": sample, **SHIPPED}, blueprint=callback_blueprint())

    assert result.steps[2].saved == {"charge_id": "ch_9"}


def test_secrets_are_masked_in_requests_responses_notes_and_data():
    token = SECRETS["PAYMENTS_TOKEN"]
    echo = {"status": 201, "body": {"id": token, "seen": f"Bearer {token}"}}

    result = walk({**QUOTED, "charge": echo, **SHIPPED})

    request = result.steps[2].attempts[0].request
    assert request["headers"]["Authorization"] == "***"
    assert request["url"] == "***/charges?expand=balance"
    assert result.steps[2].saved == {"charge_id": "***"}
    shown = json.dumps(result.as_json())
    for value in SECRETS.values():
        assert value not in shown
    assert "pay.example" not in shown


def test_a_loop_stops_at_the_runs_step_limit_as_the_runner_does():
    blueprint = {
        "slug": "loop",
        "name": "Loop",
        "steps": [
            {"id": "poll", "call": "shop.quote", "save": {}},
            {"id": "again", "choice": [{"when": "{{ true }}", "next": "poll"}], "default": "poll"},
        ],
    }
    config = dataclasses.replace(CONFIG, max_steps_per_run=5)

    result = walk({}, blueprint=blueprint, config=config)

    assert path(result) == ["poll", "again", "poll", "again", "poll"]
    assert result.end.status == "failed"
    assert result.end.error == (
        "the run executed more than 5 steps (STATE_MANAGER_MAX_STEPS_PER_RUN); "
        'stopped before step "again"'
    )


def test_a_dry_run_gives_up_after_its_attempt_limit():
    endless = {"retry": {"max_attempts": 10**9, "backoff_seconds": 0.01}}

    result = walk({"validate": {"status": 500}}, shop_quote=endless)

    assert result.end.status == "stopped"
    assert result.end.error == f"the dry run stopped after {MAX_ATTEMPTS} attempts in all"
    assert len(result.steps[0].attempts) == MAX_ATTEMPTS


def test_a_payload_that_fails_the_input_schema_and_bad_samples_are_named():
    with pytest.raises(DryRunInvalid) as raised:
        walk(
            {
                "chrage": {},
                "charge": {"status": 99, "colour": "red"},
                "fulfil.ship": [{"callback": {"outcome": "maybe"}}, "x"],
            },
            payload={"sku": "TEE", "qty": 0},
        )

    assert raised.value.errors == [
        "payload: 'email' is a required property",
        "payload.qty: 0 is less than the minimum of 1",
        "responses.chrage: no step sends a request by this id (call steps: validate, "
        "charge, fulfil.ship, fulfil.mail, review)",
        "responses.charge.colour: unknown key",
        "responses.charge.status: must be an HTTP status from 100 to 599",
        "responses.fulfil.ship[0].callback.outcome: must be one of success, failure, timeout",
        "responses.fulfil.ship[1]: must be an object with status, body, headers or callback",
    ]


def test_responses_must_be_an_object():
    with pytest.raises(DryRunInvalid) as raised:
        walk(["validate"])

    assert raised.value.errors == ["responses: must be an object of step ids"]
