"""Fixtures shared by every layer's tests. Fixtures used by one app live beside its tests."""

from dataclasses import replace

import pytest

from hosts.breaker import tally
from hosts.limits import KEY_PREFIX, limits
from hosts.rules import forget_rules
from tests.localserver import LocalServer


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Each test gets an empty cache of its own (rate-limit counts included), also when
    REDIS_URL gives the project a shared Redis cache."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(autouse=True)
def _outbound_allows_loopback(settings):
    """Tests call local HTTP servers on 127.0.0.1, which the engine refuses unless listed."""
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, outbound_allow=["127.0.0.1"])


@pytest.fixture(autouse=True)
def _fresh_host_gate(settings):
    """No test sees another's breaker counts, cached host rows or limiter clocks (Redis
    keeps them between tests; the database's are rolled back or flushed)."""
    tally.clear()
    forget_rules()
    if settings.REDIS_URL:
        client = limits()
        for key in client.client.scan_iter(f"{KEY_PREFIX}*"):
            client.client.delete(key)
    yield
    tally.clear()
    forget_rules()


@pytest.fixture
def server():
    """A real threaded HTTP server on 127.0.0.1 (see tests/localserver.py)."""
    local = LocalServer()
    yield local
    local.stop()
