"""Fixtures of the admin's tests in every app: the example blueprint, users in each role
(staff users of the roles' groups), a logged-in client, orders with a log.

They are not a conftest.py: the admin's tests live beside the code they test
(tests/orders/admin/, tests/definitions/, tests/blueprints/, tests/statemanager/, ...),
and the API tests' fixtures of tests.statemanager.fixtures use some of the same names
(`editor`, `support`, ... as token clients). A conftest.py of a folder of admin tests
takes them with `from tests.admin_fixtures import *`, and so does an admin test module in
a folder whose conftest.py gives those names other fixtures (a test module's own fixtures
win over its conftest.py's); `__all__` lists them. Helpers (`staff_in`, `add_log`) are
imported by name.
"""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from apicalls.services import api_call_save
from blueprints.services import blueprint_save, workflow_snapshot
from orders.models import Order, StepLog
from tests.blueprints import definitions
from tests.statemanager.fixtures import role

__all__ = [
    "_fast_passwords",
    "admin_client_for",
    "blueprint",
    "editor",
    "integration",
    "make_orders",
    "superuser",
    "support",
]

_numbers = itertools.count(1)


def staff_in(group: str | None, *, is_staff: bool = True, **fields) -> User:
    user = User.objects.create_user(
        username=f"{(group or 'admin').split()[0].lower()}-{next(_numbers)}",
        password="pw-for-tests",
        is_staff=is_staff,
        **fields,
    )
    if group:
        user.groups.add(role(group))
    return user


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users log in with a password here; the default hasher's strength only slows tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def blueprint(db):
    """The contract's e-commerce blueprint and its API calls, saved through the services."""
    document = definitions.document()
    for call in document["api_calls"]:
        api_call_save(definition=call)
    return blueprint_save(definition=document["blueprints"][0])


@pytest.fixture
def superuser(db):
    return staff_in(None, is_superuser=True)


@pytest.fixture
def editor(db):
    return staff_in("Blueprint editors")


@pytest.fixture
def support(db):
    return staff_in("Support")


@pytest.fixture
def integration(db):
    return staff_in("Integrations", is_staff=False)


@pytest.fixture
def admin_client_for(client):
    def log_in(user: User):
        client.force_login(user)
        return client

    return log_in


@pytest.fixture
def make_orders(blueprint):
    """`make_orders(n, status=...)`: n orders on the blueprint, each with a short log."""
    snapshot = workflow_snapshot(blueprint=blueprint)

    def make(count: int, *, status: str = Order.Status.FAILED, log: bool = True) -> list[Order]:
        orders = []
        for _ in range(count):
            number = next(_numbers)
            order = Order.objects.create(
                order_id=f"ORD-{number:05d}",
                workflow=blueprint.slug,
                snapshot=snapshot,
                payload={"sku": "ABC", "qty": 1, "email": "a@example.com"},
                data={"total": 10},
                status=status,
                current_step="charge",
                attempt=2,
                error='step "charge": HTTP 502' if status == Order.Status.FAILED else "",
                resume_point={"step": "charge", "data": {"total": 10}},
                due_at=None if status in Order.FINISHED else timezone.now(),
            )
            if log:
                add_log(order)
            orders.append(order)
        return orders

    return make


def add_log(order: Order) -> None:
    request = {
        "method": "POST",
        "url": "http://payments.test/charges",
        "headers": {"Authorization": "Bearer ***"},
        "body": {"amount": 10},
    }
    StepLog.objects.create(
        order=order,
        run=1,
        step="validate",
        attempt=1,
        outcome="succeeded",
        duration_ms=12,
        request=request,
        response={"status": 200, "headers": {}, "body": {"total": 10}},
    )
    StepLog.objects.create(
        order=order,
        run=1,
        step="route",
        kind="step",
        outcome="succeeded",
        duration_ms=0,
        response={"note": "default: next charge"},
    )
    for attempt in (1, 2):
        StepLog.objects.create(
            order=order,
            run=1,
            step="charge",
            attempt=attempt,
            duration_ms=30,
            outcome="retrying" if attempt == 1 else "failed",
            error="HTTP 502",
            request=request,
            response={"status": 502, "headers": {}, "body": "bad gateway"},
        )
