"""Fixtures for API tests in every app: users in each role, token clients, definitions.

Test modules outside tests/statemanager take them with `from tests.statemanager.fixtures
import *` (pytest finds fixtures in a test module's namespace); `__all__` lists them.
"""

from __future__ import annotations

import importlib
import itertools
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apicalls.services import api_call_save
from blueprints.services import blueprint_save
from orders.models import Callback, Order
from orders.services import order_create
from statemanager import migrations as statemanager_migrations

__all__ = [
    "_fresh_throttle_counts",
    "anonymous",
    "editor",
    "integration",
    "shop",
    "superuser",
    "support",
    "waiting",
]

_user_numbers = itertools.count(1)

SHOP_SCHEMA = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
}


def token_client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.user = user
    return client


def user_in(group: str | None, **fields) -> User:
    user = User.objects.create_user(username=f"{group or 'user'}-{next(_user_numbers)}", **fields)
    if group:
        user.groups.add(role(group))
    return user


def role(name: str) -> Group:
    """The group the roles migrations made; a transactional test's flush empties the table,
    so then the migrations' functions make it again, in their order."""
    if not Group.objects.filter(name=name).exists():
        editor = SimpleNamespace(connection=connection)
        for path in sorted(Path(statemanager_migrations.__file__).parent.glob("0*.py")):
            module = importlib.import_module(f"statemanager.migrations.{path.stem}")
            for operation in module.Migration.operations:
                operation.code(apps, editor)
    return Group.objects.get(name=name)


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Throttle counts live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def integration(db) -> APIClient:
    return token_client(user_in("Integrations"))


@pytest.fixture
def support(db) -> APIClient:
    return token_client(user_in("Support"))


@pytest.fixture
def editor(db) -> APIClient:
    return token_client(user_in("Blueprint editors"))


@pytest.fixture
def superuser(db) -> APIClient:
    return token_client(user_in(None, is_superuser=True, is_staff=True))


@pytest.fixture
def anonymous(db) -> APIClient:
    return token_client(None)


@pytest.fixture
def shop(db):
    """An API call and a two-step blueprint `shop` with an input schema."""
    api_call_save(
        definition={
            "slug": "shop.charge",
            "name": "Charge",
            "method": "POST",
            "url": "http://127.0.0.1:9/charge",
            "body": {"sku": "{{ input.sku }}"},
        }
    )
    return blueprint_save(
        definition={
            "slug": "shop",
            "name": "Shop",
            "input_schema": SHOP_SCHEMA,
            "steps": [
                {"id": "charge", "call": "shop.charge"},
                {"id": "ship", "call": "shop.charge", "end": "completed"},
            ],
        }
    )


def shop_order(order_id: str, status: str = "pending", **fields) -> Order:
    """An order of the `shop` workflow (made through the webhook's service), in `status`."""
    order, _ = order_create(order_id=order_id, workflow="shop", payload={"sku": "mug", "qty": 1})
    if status != "pending" or fields:
        Order.objects.filter(pk=order.pk).update(status=status, **fields)
        order.refresh_from_db()
    return order


@pytest.fixture
def waiting(shop) -> Callback:
    """The callback `tok-1` of order A-1, waiting at its `charge` step for an hour."""
    order = shop_order("A-1", "waiting", due_at=timezone.now() + timedelta(hours=1))
    return Callback.objects.create(
        token="tok-1",
        order=order,
        run=1,
        step="charge",
        expires_at=timezone.now() + timedelta(hours=1),
    )
