"""Fixtures shared by every layer's tests. Fixtures used by one app live beside its tests."""

import pytest

from tests.localserver import LocalServer


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Each test gets an empty cache of its own (rate-limit counts included), also when
    REDIS_URL gives the project a shared Redis cache."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(autouse=True)
def _outbound_allows_loopback(settings):
    """Tests call local HTTP servers on 127.0.0.1, which the engine refuses unless listed."""
    settings.STATE_MANAGER = {**settings.STATE_MANAGER, "OUTBOUND_ALLOW": ["127.0.0.1"]}


@pytest.fixture
def server():
    """A real threaded HTTP server on 127.0.0.1 (see tests/localserver.py)."""
    local = LocalServer()
    yield local
    local.stop()
