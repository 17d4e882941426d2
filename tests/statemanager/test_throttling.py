"""The webhook's rate limit counts requests per token in a window from the first."""

import os
import uuid

import pytest
from django.core.cache import caches

from orders.api.throttling import count_request


def test_requests_are_counted_in_the_window_of_the_first():
    key = f"throttle-test-{uuid.uuid4()}"

    counts = [count_request(key, 60) for _ in range(3)]

    assert counts == [(1, 60.0), (2, 60.0), (3, 60.0)]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
def test_redis_counts_in_one_round_trip_and_tells_the_time_left(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
    key = f"throttle-test-{uuid.uuid4()}"
    try:
        counts = [count_request(key, 60) for _ in range(3)]

        assert [count for count, _ in counts] == [1, 2, 3]
        assert all(59 < left <= 60 for _, left in counts)
        assert caches["default"].get(key) == 3
    finally:
        caches["default"].delete(key)
