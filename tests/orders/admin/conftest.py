"""The orders admin's tests take the admin fixtures of tests/admin_fixtures.py."""

from tests.admin_fixtures import *  # noqa: F403
