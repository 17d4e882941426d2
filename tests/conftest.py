"""Fixtures shared by every layer's tests. Fixtures used by one app live beside its tests."""

import pytest


@pytest.fixture(autouse=True)
def _outbound_allows_loopback(settings):
    """Tests call local HTTP servers on 127.0.0.1, which the engine refuses unless listed."""
    settings.STATE_MANAGER = {**settings.STATE_MANAGER, "OUTBOUND_ALLOW": ["127.0.0.1"]}
