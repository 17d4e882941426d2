"""A dry run of a map step: each item answered by its own sample (`<step>[<index>]`) or the
map's, its attempts shown item by item under the map step."""

from __future__ import annotations

import pytest

from orders.engine.config import EngineConfig
from orders.engine.dry_run import DryRunInvalid, dry_run

CONFIG = EngineConfig(
    max_steps_per_run=100,
    outbound_allow=[],
    max_inline_wait_seconds=5.0,
    public_url="https://sm.example",
    log_body_bytes=4096,
    token_key=b"k",
)
RESERVE = {
    "slug": "stock.reserve",
    "name": "Reserve",
    "method": "POST",
    "url": "https://stock.example/reservations",
    "body": {"sku": "{{ params.sku }}"},
}
LINES = [{"sku": "TEE"}, {"sku": "CAP"}, {"sku": "MUG"}]


def blueprint(**spec) -> dict:
    inner = {
        "items": "{{ input.lines }}",
        "max_concurrency": 3,
        "call": "stock.reserve",
        "params": {"sku": "{{ item.sku }}"},
        "save": {"id": "{{ response.body.id }}"},
        **spec,
    }
    steps = [
        {
            "id": "reserve",
            "map": inner,
            "save": {"ids": "{{ results | map(attribute='id') | list }}"},
        },
        {"id": "done", "end": "completed"},
    ]
    return {"slug": "lines", "name": "Lines", "steps": steps}


def walk(responses: dict, **spec):
    definition = {"blueprint": blueprint(**spec), "api_calls": {"stock.reserve": RESERVE}}
    return dry_run(definition, payload={"lines": LINES}, responses=responses, config=CONFIG)


def test_each_item_is_answered_by_its_own_sample_or_the_maps():
    result = walk({"reserve": {"body": {"id": "r"}}, "reserve[1]": {"body": {"id": "r-cap"}}})

    assert result.end.status == "completed"
    assert result.end.data == {"ids": ["r", "r-cap", "r"]}
    visit = result.steps[0]
    assert visit.kind == "map"
    assert [(a.step, a.request["body"]) for a in visit.attempts] == [
        ("reserve[0]", {"sku": "TEE"}),
        ("reserve[1]", {"sku": "CAP"}),
        ("reserve[2]", {"sku": "MUG"}),
    ]
    assert visit.notes == ["3 items: 3 succeeded"]


def test_an_item_whose_sample_fails_fails_the_map_naming_it():
    result = walk({"reserve": {"body": {"id": "r"}}, "reserve[2]": {"status": 409}})

    assert result.end.status == "failed"
    assert result.steps[0].error == "1 of 3 items failed (0 tolerated): [2] HTTP 409"


def test_a_sample_for_no_such_step_is_refused():
    with pytest.raises(DryRunInvalid) as caught:
        walk({"reserv[1]": {}})
    assert caught.value.errors[0].startswith("responses.reserv[1]: no step sends a request")


def test_an_item_retried_later_is_tried_again_at_once():
    retried = [{"status": 503, "headers": {"Retry-After": "60"}}, {"body": {"id": "r-mug"}}]
    result = walk(
        {"reserve": {"body": {"id": "r"}}, "reserve[2]": retried}, retry={"max_attempts": 2}
    )

    assert result.end.data == {"ids": ["r", "r", "r-mug"]}
    mug = [
        (a.attempt, a.outcome, a.waits) for a in result.steps[0].attempts if a.step == "reserve[2]"
    ]
    assert mug == [(1, "retrying", "order waiting"), (2, "succeeded", "")]
