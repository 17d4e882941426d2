"""A map's attempts are counted at the map step in /metrics: one series per step, not one
per item."""

from dataclasses import replace
from functools import partial

import pytest

from orders import counters
from orders.batch import run_batch
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order
from tests.statemanager.metrics import TOKEN, scrape
from tests.statemanager.metrics import grew as grown

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, metrics_token=TOKEN)
    counters.reset()


def test_a_maps_attempts_are_counted_at_its_step(client, token, server):
    server.route("POST", "/reserve", Reply(201))
    step = {"id": "reserve", "map": {"items": "{{ input.lines }}", "call": "reserve"}}
    make_order([step], [api_call("reserve", server.url + "/reserve")], payload={"lines": [1, 2, 3]})
    before = scrape(client)
    run_batch()
    after = scrape(client)

    grew = partial(grown, before, after)
    succeeded = grew(
        "statemanager_attempts_total", blueprint="flow", step="reserve", outcome="succeeded"
    )
    assert succeeded == 3
    assert "reserve[" not in str(after)
