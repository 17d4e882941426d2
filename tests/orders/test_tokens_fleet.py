"""One OAuth2 token at a time for the whole fleet: three qclusters on PostgreSQL with the
Redis broker share each token until it nears its expiry, and no call goes out with an
expired one."""

import time

import pytest

from orders.lanes import dispatch_lanes, fleet_workers
from orders.models import Order, StepLog
from tests.orders.connections import one_call_order
from tests.orders.fleet import WORKERS_PER_CLUSTER, logs
from tests.orders.test_batch import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ORDERS = 240
SLOW_API_SECONDS = 0.5  # 240 orders take some 5 s on 24 calls in flight: tokens expire


def test_three_qclusters_fetch_one_token_per_expiry_and_send_none_expired(
    server,
    fleet,
    oauth,
    tmp_path,
):
    api = oauth.api
    server.route(
        "POST", "/api/orders", lambda request: (time.sleep(SLOW_API_SECONDS), api(request))[1]
    )
    orders = [one_call_order(server.url + "/api/orders", "pay") for _ in range(ORDERS)]
    for _ in range(3):
        fleet()
    assert wait_until(lambda: fleet_workers() == 3 * WORKERS_PER_CLUSTER, 30), logs(tmp_path)

    started = time.monotonic()
    dispatch_lanes()
    done = wait_until(lambda: Order.objects.filter(status="completed").count() == len(orders), 180)
    elapsed = time.monotonic() - started

    assert done, logs(tmp_path)
    # A token lives 2 s and is reused for 1.8 s: one fetch per 1.8 s for the fleet, plus
    # the first (nine worker processes fetching each their own would be nine times that).
    assert oauth.fetched <= elapsed / 1.8 + 2, (oauth.fetched, elapsed)
    assert elapsed > 3.6  # the run outlived two tokens, so the bound above was tested
    # A call that arrives after its token expired (a tenth of 2 s is a thin margin on a
    # busy machine) gets a 401, a fresh token and its resend in the same attempt: no
    # order counts it as a failed attempt.
    outcomes = StepLog.objects.filter(kind="attempt").values_list("outcome", flat=True)
    assert list(outcomes) == ["succeeded"] * len(orders)
    resent = len(server.requests_to("/api/orders")) - len(orders)
    assert resent == oauth.expired_calls
