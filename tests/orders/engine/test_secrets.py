"""Secrets reach the API they are meant for and never any stored row."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit

import pytest
from django.apps import apps
from django.core import serializers
from django.db import connection
from rest_framework.test import APIClient

from expressions.secrets import mask
from orders.models import Callback, Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "tok-9f8e7d6c5b4a"


def everything_stored() -> str:
    rows = []
    for model in apps.get_models():
        rows.append(serializers.serialize("json", model.objects.all()))
    return "\n".join(rows)


def test_secrets_are_sent_but_never_stored(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    server.route("POST", "/charge", lambda request: Reply(500, {"echo": request.headers["X-Key"]}))
    calls = [
        api_call(
            "charge",
            server.url + "/charge?key={{ secrets.PAY_TOKEN }}",
            headers={
                "Authorization": "Bearer {{ secrets.PAY_TOKEN }}",
                "X-Key": "{{ secrets.PAY_TOKEN }}",
            },
            query={"sig": "{{ secrets.PAY_TOKEN }}"},
            body={"token": "{{ secrets.PAY_TOKEN }}", "note": "key={{ secrets.PAY_TOKEN }}"},
            retry={"max_attempts": 2, "backoff_seconds": 0.01},
        )
    ]
    order = process(make_order([{"id": "charge", "call": "charge"}], calls))

    assert order.status == Order.Status.FAILED
    sent = server.requests_to("/charge")[0]
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.body["token"] == SECRET
    stored = everything_stored()
    assert SECRET not in stored
    assert "***" in json.dumps(order.log.first().request)


def test_a_failing_expression_message_does_not_leak_a_secret(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    # An undefined key's message names the key: here, the secret's value.
    calls = [api_call("a", server.url + "/a", body={"x": "{{ input[secrets.PAY_TOKEN] }}"})]
    order = process(make_order([{"id": "a", "call": "a"}], calls))

    assert order.status == Order.Status.FAILED
    assert SECRET not in everything_stored()


def test_the_state_of_a_step_waiting_for_its_callback_holds_no_secret(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_PAY_TOKEN", SECRET)
    server.route("POST", "/pay", lambda request: Reply(200, {"echo": request.body["auth"]}))
    calls = [api_call("pay", server.url + "/pay", body={"auth": "{{ params.auth }}"})]
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "params": {"auth": "{{ secrets.PAY_TOKEN }}"},
            "wait_for_callback": {"timeout_seconds": 60},
        }
    ]
    order = process(make_order(steps, calls))

    assert order.status == Order.Status.WAITING
    assert server.requests_to("/pay")[0].body == {"auth": SECRET}
    assert SECRET not in everything_stored()


# A base64-like secret, one with JSON's escapes and a non-ASCII letter, and a secret base
# URL whose scheme `requests` lowercases, in every place a call can carry them, sent to an
# API that echoes everything back as JSON and as text.

TOKEN = "q9+sEcr/ETvAlue== x"
QUOTED = 'pa"ss\\w\u00f6rd/1'


def secret_forms(secret: str) -> set[str]:
    """The forms a leak would take: percent-encoded as path, query and form, JSON-escaped
    (ASCII or not), in COPY's escaping, and in either letter case."""
    forms = {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    forms |= {form.replace("\\", "\\\\") for form in forms}
    return forms | {form.lower() for form in forms} | {form.upper() for form in forms}


def database_dump() -> str:
    """Every byte the database holds: pg_dump on PostgreSQL, the files on SQLite."""
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        command = [
            "pg_dump",
            "--host",
            settings_dict["HOST"] or "127.0.0.1",
            "--port",
            str(settings_dict["PORT"] or 5432),
            "--username",
            settings_dict["USER"] or "postgres",
            settings_dict["NAME"],
        ]
        return subprocess.run(command, check=True, capture_output=True).stdout.decode()
    # Read by another process: closing a descriptor of the database file here would drop
    # every POSIX lock this process holds on it, and a worker process closing its last
    # connection would then delete the WAL under this process's open connections.
    files = [
        str(path)
        for path in (Path(settings_dict["NAME"]), Path(settings_dict["NAME"] + "-wal"))
        if path.exists()
    ]
    read = "import sys; [sys.stdout.buffer.write(open(f, 'rb').read()) for f in sys.argv[1:]]"
    dumped = subprocess.run([sys.executable, "-c", read, *files], check=True, capture_output=True)
    return dumped.stdout.decode(errors="replace")


def echo(request) -> Reply:
    """Everything received, as JSON, or as ASCII-escaped JSON text under /text/."""
    received = {"path": request.path, "headers": request.headers, "body": request.body}
    if request.path.startswith("/text/"):
        return Reply(200, json.dumps(received))
    return Reply(200, received, headers={"X-Echo-Path": request.path})


@pytest.mark.skipif(
    connection.vendor == "postgresql" and shutil.which("pg_dump") is None,
    reason="pg_dump is not installed",
)
def test_no_form_of_a_secret_reaches_the_database(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_TOKEN", TOKEN)
    monkeypatch.setenv("STATE_MANAGER_SECRET_QUOTED", QUOTED)
    monkeypatch.setenv("STATE_MANAGER_SECRET_BASE", server.url.replace("http://", "HTTP://"))
    server.fallback = echo
    everywhere = {
        "url": "{{ secrets.BASE }}/echo/{{ secrets.TOKEN }}/{{ secrets.QUOTED }}",
        "query": {"t": "{{ secrets.TOKEN }}", "q": "{{ secrets.QUOTED }}"},
        "headers": {"X-Token": "{{ secrets.TOKEN }}", "X-Quoted": "{{ secrets.QUOTED }}"},
        "body": {
            "t": "{{ secrets.TOKEN }}",
            "q": "{{ secrets.QUOTED }}",
            "b": "{{ secrets.BASE }}",
        },
    }
    text = {**everywhere, "url": everywhere["url"].replace("/echo/", "/text/")}
    calls = [
        api_call("echo", **everywhere, save={"echo": "{{ response }}"}),
        api_call("text", **text, save={"text": "{{ response.body }}"}),
        api_call("fail", **everywhere, success_when="{{ response.status == 201 }}"),
    ]
    steps = [
        {"id": "echo", "call": "echo"},
        {
            "id": "text",
            "call": "text",
            "wait_for_callback": {"timeout_seconds": 600},
            "save": {"called_back": "{{ callback.data }}"},
        },
        {"id": "fail", "call": "fail"},
    ]
    order = process(make_order(steps, calls))
    assert order.status == Order.Status.WAITING, (order.error, list(order.log.values()))
    token = Callback.objects.get(order=order).token
    callback_data = {"raw": TOKEN, "form": quote_plus(TOKEN), TOKEN: QUOTED.upper()}
    answer = APIClient().post(
        f"/api/callbacks/{token}/", {"outcome": "success", "data": callback_data}, format="json"
    )
    assert answer.status_code == 202
    order = process(order)

    assert order.status == Order.Status.FAILED
    sent = [r for r in server.received if r.path.startswith("/echo/")][0]
    assert sent.headers["X-Token"] == TOKEN and sent.body["q"] == QUOTED
    assert unquote(sent.path.split("?")[0]) == f"/echo/{TOKEN}/{QUOTED}"
    assert parse_qs(urlsplit(sent.path).query) == {"t": [TOKEN], "q": [QUOTED]}
    assert order.data["called_back"]["raw"] == "***"
    dump = database_dump()
    assert "***" in dump
    for secret in (TOKEN, QUOTED, server.url.replace("http://", "HTTP://")):
        leaked = sorted(form for form in secret_forms(secret) if form in dump)
        assert leaked == [], f"{secret!r} is stored as {leaked}"


@pytest.mark.parametrize(
    "stored",
    [
        "https://API.Example.COM/v1",  # a secret base URL, its host lowercased by requests
        "https://api.example.com/v1",
        "https%3A%2F%2Fapi.example.com%2Fv1",
        "https%3a%2f%2fapi.example.com%2fv1",
        "https:\\/\\/api.example.com\\/v1",
    ],
)
def test_a_secret_is_masked_in_every_form_it_is_stored_in(stored):
    assert mask({"seen": f"<{stored}>"}, ["https://API.Example.COM/v1"]) == {"seen": "<***>"}


def test_masking_walks_a_value_nested_deeper_than_python_recursion():
    value = leaf = {}
    for _ in range(5000):
        leaf["k"] = {}
        leaf = leaf["k"]
    leaf[SECRET] = [SECRET]
    masked = mask(value, [SECRET])
    for _ in range(5000):
        masked = masked["k"]
    assert masked == {"***": ["***"]}
