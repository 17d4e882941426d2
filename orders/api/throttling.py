"""The webhook's rate limit: DRF's ScopedRateThrottle, counting requests in windows.

DRF's own throttles keep the time of every request in the window: one cache value per
user, read and written whole on each request (up to 6000 entries at the default rate),
which cost a webhook post more CPU than anything but its INSERT and the token lookup. A
counter is one increment: with Redis, one round trip.
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import ScopedRateThrottle


class CountingScopedRateThrottle(ScopedRateThrottle):
    """At most N requests of a user per window of the scope's rate ("N/minute"), a window
    starting with the first request after the last one ended (so up to 2N across the end
    of one window and the start of the next)."""

    # Not DRF's keys: a process still running DRF's throttle (during a rolling upgrade)
    # would read a count where it expects its list of times.
    cache_format = "throttle_%(scope)s_count_%(ident)s"

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        count, self.window_left = count_request(key, self.duration)
        return count <= self.num_requests

    def wait(self) -> float:
        return self.window_left


def count_request(key: str, seconds: int) -> tuple[int, float]:
    """One more request at `key`: the count in the window, which ends `seconds` after its
    first request, and the seconds left of it (outside Redis, `seconds`: at most that)."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # Django's incr costs two round trips (and a new client object each): one pipeline,
        # a transaction, so the count never outlives its expiry.
        key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(key, write=True)
        pipeline = client.pipeline().set(key, 0, ex=seconds, nx=True).incr(key).pttl(key)
        _, count, left_ms = pipeline.execute()
        return count, max(left_ms, 0) / 1000
    cache.add(key, 0, seconds)
    return cache.incr(key), float(seconds)
