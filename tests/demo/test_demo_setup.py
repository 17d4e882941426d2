"""`demo_setup`, run by ./run at every start, never replaces a definition someone changed
since the demo imported it, and says what it kept."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from apicalls.models import ApiCall
from apicalls.services import api_call_save
from blueprints.models import Blueprint
from blueprints.services import blueprint_save
from connections.models import Connection
from connections.services import connection_save

pytestmark = pytest.mark.django_db

DEFINITIONS = settings.BASE_DIR / "demo" / "definitions.json"


def demo_document() -> dict:
    return json.loads(DEFINITIONS.read_text())


def a_restart(capsys, **options) -> str:
    capsys.readouterr()
    call_command("demo_setup", **options)
    return capsys.readouterr().out


@pytest.fixture
def kim(db):
    return User.objects.create_user("kim", is_staff=True)


def test_a_restart_after_an_editors_change_keeps_the_change(capsys, kim):
    call_command("demo_setup")
    blueprint = demo_document()["blueprints"][0]
    blueprint["steps"][-1]["error"] = "the card was refused"
    blueprint_save(definition=blueprint, user=kim)

    out = a_restart(capsys)

    saved = Blueprint.objects.get(slug="ecommerce-order")
    assert (saved.version, saved.steps[-1]["error"]) == (2, "the card was refused")
    assert saved.versions.count() == 2
    assert (
        "Kept blueprint ecommerce-order as it is: changed since the demo's import (v2 by kim)."
        in out
    )


def test_a_change_by_the_demos_own_admin_login_is_kept_too(capsys):
    call_command("demo_setup")
    call = demo_document()["api_calls"][0]
    api_call_save(
        definition={**call, "timeout_seconds": 7}, user=User.objects.get(username="admin")
    )

    out = a_restart(capsys)

    assert ApiCall.objects.get(slug="shop.quote").definition["timeout_seconds"] == 7
    assert "Kept api call shop.quote as it is" in out


def test_a_changed_connection_is_kept(capsys):
    call_command("demo_setup")
    connection = demo_document()["connections"][0]
    connection_save(definition={**connection, "scope": "payments refunds"})

    out = a_restart(capsys)

    assert Connection.objects.get(name="payments").as_definition()["scope"] == "payments refunds"
    assert "Kept connection payments as it is" in out


def test_definitions_nobody_changed_take_a_newer_demo_file(capsys, tmp_path, kim):
    call_command("demo_setup")
    document = demo_document()
    document["api_calls"][0]["timeout_seconds"] = 9
    document["blueprints"][0]["name"] = "E-commerce order, new demo"
    newer = tmp_path / "definitions.json"
    newer.write_text(json.dumps(document))

    out = a_restart(capsys, file=str(newer))

    assert ApiCall.objects.get(slug="shop.quote").definition["timeout_seconds"] == 9
    assert Blueprint.objects.get(slug="ecommerce-order").name == "E-commerce order, new demo"
    assert "Kept" not in out
    version = Blueprint.objects.get(slug="ecommerce-order").versions.order_by("-version")[0]
    assert version.created_by.username == "demo-setup"


def test_the_demos_importer_cannot_log_in(capsys):
    call_command("demo_setup")

    importer = User.objects.get(username="demo-setup")
    assert not importer.is_active
    assert not importer.has_usable_password()
