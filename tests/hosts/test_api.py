"""/api/hosts/: CRUD by host name in the contract's JSON (section 9), validation naming the
field, who may do what, pause, resume and closing a breaker, and what a resume does to
the orders a host's pause held."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from hosts import breaker, gate
from hosts.models import Host, HostWindow
from tests.hosts.conftest import held_order
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order, token_client, user_in

pytestmark = pytest.mark.django_db

HOSTS = "/api/hosts/"
PARTNER = "/api/hosts/api.partner.example/"
CLOSED = {"state": "closed", "since": None, "failure_rate": None}


def errors_of(response) -> list[str]:
    assert response.status_code == 400, response.content
    return response.json()["errors"]


def test_an_editor_creates_a_host_and_reads_it_back_in_the_contract_json(editor):
    body = {"host": "API.Partner.example.", "rate_per_second": 5, "max_concurrent": 3}

    created = editor.post(HOSTS, body, format="json")

    assert created.status_code == 201
    expected = {
        "host": "api.partner.example",
        "rate_per_second": 5.0,
        "max_concurrent": 3,
        "paused": False,
        "breaker": CLOSED,
    }
    assert created.json() == expected
    assert editor.get(PARTNER).json() == expected
    assert editor.get("/api/hosts/API.PARTNER.EXAMPLE./").json() == expected
    listed = editor.get(HOSTS).json()
    assert listed["count"] == 1 and listed["results"] == [expected]


def test_a_host_without_limits_has_nulls_and_ip_addresses_are_hosts(editor):
    for name in ("127.0.0.1", "::1"):
        response = editor.post(HOSTS, {"host": name}, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["rate_per_second"] is None
        assert response.json()["max_concurrent"] is None
    assert editor.get("/api/hosts/::1/").json()["host"] == "::1"


def test_put_replaces_the_limits_and_patch_changes_only_what_it_names(editor, partner):
    patched = editor.patch(PARTNER, {"max_concurrent": 10}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["rate_per_second"], patched.json()["max_concurrent"]) == (5.0, 10)

    put = editor.put(PARTNER, {"rate_per_second": 0.5}, format="json")

    assert put.status_code == 200
    assert (put.json()["rate_per_second"], put.json()["max_concurrent"]) == (0.5, None)
    partner.refresh_from_db()
    assert (partner.rate_per_second, partner.max_concurrent) == (0.5, None)


def test_a_put_of_what_was_read_changes_nothing(editor, partner):
    body = editor.get(PARTNER).json()

    assert editor.put(PARTNER, body, format="json").json() == body


def test_a_host_cannot_be_renamed_or_created_twice(editor, partner):
    renamed = editor.patch(PARTNER, {"host": "other.example"}, format="json")
    assert errors_of(renamed) == ["host: must match the URL; a host cannot be renamed"]

    again = editor.post(HOSTS, {"host": "API.partner.example"}, format="json")
    assert errors_of(again) == ['host: host "api.partner.example" exists already']


def test_the_breaker_is_read_only(editor, partner):
    body = {"breaker": {"state": "open"}, "max_concurrent": 2}

    response = editor.patch(PARTNER, body, format="json")

    assert response.status_code == 200
    assert response.json()["breaker"] == CLOSED


@pytest.mark.parametrize(
    "body, field",
    [
        ({"host": "https://api.partner.example/"}, "host"),
        ({"host": "api.partner.example:8443"}, "host"),
        ({"host": "bad host"}, "host"),
        ({"host": ""}, "host"),
        ({"host": "a\x00b"}, "host"),
        ({"host": "x" * 300}, "host"),
        ({"host": ["a.example"]}, "host"),
        ({}, "host"),
        ({"host": "a.example", "rate_per_second": 0}, "rate_per_second"),
        ({"host": "a.example", "rate_per_second": -1}, "rate_per_second"),
        ({"host": "a.example", "rate_per_second": 1e308}, "rate_per_second"),
        ({"host": "a.example", "rate_per_second": "NaN"}, "rate_per_second"),
        ({"host": "a.example", "rate_per_second": "Infinity"}, "rate_per_second"),
        ({"host": "a.example", "rate_per_second": True}, "rate_per_second"),
        ({"host": "a.example", "rate_per_second": "fast"}, "rate_per_second"),
        ({"host": "a.example", "max_concurrent": 0}, "max_concurrent"),
        ({"host": "a.example", "max_concurrent": 1.5}, "max_concurrent"),
        ({"host": "a.example", "max_concurrent": 10**30}, "max_concurrent"),
        ({"host": "a.example", "max_concurrent": True}, "max_concurrent"),
        ({"host": "a.example", "paused": None}, "paused"),
        ({"host": "a.example", "paused": "maybe"}, "paused"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(superuser, body, field):
    errors = errors_of(superuser.post(HOSTS, body, format="json"))

    assert errors and all(error.startswith(f"{field}: ") for error in errors), errors
    assert not Host.objects.exists()


@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_a_nul_character_in_a_form_or_json_body_is_a_400_naming_the_field(superuser, fmt):
    response = superuser.post(HOSTS, {"host": "a.example", "note": "a\x00b"}, format=fmt)

    assert errors_of(response) == ["note: contains a NUL character"]
    assert not Host.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_json_cannot_carry_are_a_400(superuser, number):
    body = f'{{"host": "a.example", "rate_per_second": {number}}}'

    response = superuser.post(HOSTS, body, content_type="application/json")

    assert response.status_code == 400
    assert not Host.objects.exists()


def test_the_limits_message_says_what_is_allowed(superuser, partner):
    errors = errors_of(superuser.patch(PARTNER, {"rate_per_second": 0}, format="json"))

    assert errors == [
        "rate_per_second: must be from 0.001 to 1,000,000 requests per second, or null for no limit"
    ]


def test_a_body_that_is_not_an_object_is_a_400(superuser, partner):
    assert errors_of(superuser.post(HOSTS, [1, 2], format="json")) == [
        "body: must be a JSON object"
    ]


@pytest.mark.parametrize(
    "path", ["nothing.example", "a%00b", "bad host", "%E2%98%83", "a..b", "-a-", "x" * 300]
)
def test_a_host_that_is_not_there_or_could_not_be_is_404(superuser, partner, path):
    assert superuser.get(f"{HOSTS}{path}/").status_code == 404
    assert superuser.patch(f"{HOSTS}{path}/", {}, format="json").status_code == 404
    assert superuser.post(f"{HOSTS}{path}/pause/").status_code == 404


def test_who_may_read_write_and_pause_hosts(support, editor, integration, anonymous, superuser):
    Host.objects.create(host="api.partner.example")

    assert anonymous.get(HOSTS).status_code == 401
    assert integration.get(HOSTS).status_code == 403
    assert integration.post(f"{PARTNER}pause/").status_code == 403
    assert support.get(PARTNER).status_code == 200
    assert support.post(HOSTS, {"host": "b.example"}, format="json").status_code == 403
    assert support.patch(PARTNER, {"max_concurrent": 2}, format="json").status_code == 403
    assert support.delete(PARTNER).status_code == 403
    assert editor.post(HOSTS, {"host": "b.example"}, format="json").status_code == 201
    assert editor.patch(PARTNER, {"max_concurrent": 2}, format="json").status_code == 200
    assert editor.delete(PARTNER).status_code == 403
    for client in (support, editor):
        assert client.post(f"{PARTNER}pause/").status_code == 200
        assert client.post(f"{PARTNER}resume/").status_code == 200
        assert client.post(f"{PARTNER}close-breaker/").status_code == 200
    assert superuser.delete(PARTNER).status_code == 204
    assert list(Host.objects.values_list("host", flat=True)) == ["b.example"]


def test_changing_paused_by_writing_needs_the_pause_permission(partner):
    changer = user_in(None)
    changer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_host", "change_host", "add_host"])
    )
    client = token_client(changer)

    assert client.patch(PARTNER, {"paused": True}, format="json").status_code == 403
    assert client.post(HOSTS, {"host": "b.example", "paused": True}, format="json").status_code == (
        403
    )
    assert (
        client.patch(PARTNER, {"paused": False, "max_concurrent": 1}, format="json").json()[
            "max_concurrent"
        ]
        == 1
    )  # "paused" as it is: no permission needed
    assert not Host.objects.get(host="api.partner.example").paused


def test_pause_keeps_the_first_pauser_and_resume_clears_it(support, editor, partner):
    first = support.post(f"{PARTNER}pause/")
    assert first.status_code == 200 and first.json()["paused"] is True
    editor.post(f"{PARTNER}pause/")
    partner.refresh_from_db()
    assert partner.paused_by == support.user.username

    resumed = editor.post(f"{PARTNER}resume/")

    assert resumed.json()["paused"] is False
    partner.refresh_from_db()
    assert (partner.paused_at, partner.paused_by) == (None, "")


def test_writing_paused_pauses_and_resumes_as_the_user(editor, partner):
    assert editor.patch(PARTNER, {"paused": True}, format="json").json()["paused"] is True
    partner.refresh_from_db()
    assert partner.paused_by == editor.user.username

    created = editor.post(HOSTS, {"host": "b.example", "paused": True}, format="json")
    assert created.status_code == 201 and created.json()["paused"] is True

    assert editor.put(PARTNER, {"paused": False}, format="json").json()["paused"] is False


def test_a_paused_host_holds_its_calls_at_the_gate_until_resumed(support, partner):
    support.post(f"{PARTNER}pause/")
    assert isinstance(gate.enter("api.partner.example", timeout=1), gate.Hold)

    support.post(f"{PARTNER}resume/")

    assert isinstance(gate.enter("api.partner.example", timeout=1), gate.Permit)


def test_close_breaker_closes_an_open_breaker_by_hand(support, partner):
    since = timezone.now() - timedelta(minutes=5)
    Host.objects.filter(pk=partner.pk).update(
        breaker_state="open", breaker_since=since, breaker_failure_rate=0.9
    )
    assert support.get(PARTNER).json()["breaker"]["state"] == "open"

    response = support.post(f"{PARTNER}close-breaker/")

    breaker = response.json()["breaker"]
    assert response.status_code == 200
    assert (breaker["state"], breaker["failure_rate"]) == ("closed", 0.0)
    assert breaker["since"] > since.isoformat()
    assert isinstance(gate.enter("api.partner.example", timeout=1), gate.Permit)


def test_a_resumed_hosts_held_orders_are_due_now_and_no_others(support, shop, partner):
    Host.objects.create(host="other.example", paused_at=timezone.now())
    support.post(f"{PARTNER}pause/")
    mine = held_order("A-1", "api.partner.example", "paused")
    other_host = held_order("A-2", "other.example", "paused")
    other_reason = held_order("A-3", "api.partner.example", "breaker")
    not_held = shop_order("A-4", "waiting", due_at=timezone.now() + timedelta(seconds=300))
    before = timezone.now()

    support.post(f"{PARTNER}resume/")

    mine.refresh_from_db()
    assert before <= mine.due_at <= timezone.now()
    for order in (other_host, other_reason, not_held):
        due_at = order.due_at
        order.refresh_from_db()
        assert order.due_at == due_at, order.order_id


def test_resuming_by_writing_paused_false_also_makes_held_orders_due(editor, shop, partner):
    editor.patch(PARTNER, {"paused": True}, format="json")
    order = held_order("A-1", "api.partner.example", "paused")

    editor.patch(PARTNER, {"paused": False}, format="json")

    order.refresh_from_db()
    assert order.due_at <= timezone.now()


def test_deleting_a_paused_host_makes_its_held_orders_due(superuser, shop, partner):
    superuser.post(f"{PARTNER}pause/")
    order = held_order("A-1", "api.partner.example", "paused")

    assert superuser.delete(PARTNER).status_code == 204

    order.refresh_from_db()
    assert order.due_at <= timezone.now()


def test_changing_a_rate_starts_the_hosts_counters_afresh(editor, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, host_max_wait_seconds=0.0)
    editor.post(HOSTS, {"host": "slow.example", "rate_per_second": 0.001}, format="json")
    assert isinstance(gate.enter("slow.example", timeout=1), gate.Permit)
    assert isinstance(gate.enter("slow.example", timeout=1), gate.Hold)  # next in 1000 s

    editor.patch("/api/hosts/slow.example/", {"rate_per_second": 100}, format="json")

    assert isinstance(gate.enter("slow.example", timeout=1), gate.Permit)


def test_hosts_are_in_the_openapi_schema(superuser):
    schema = superuser.get("/api/schema/?format=json").json()

    for action in ("pause", "resume", "close-breaker"):
        operation = schema["paths"][f"/api/hosts/{{host}}/{action}/"]["post"]
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/Host"}
    host = schema["components"]["schemas"]["Host"]
    assert set(host["required"]) == {
        "host",
        "rate_per_second",
        "max_concurrent",
        "paused",
        "breaker",
    }
    assert host["properties"]["breaker"]["readOnly"] is True


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("2001:DB8:0:0::0001", "2001:db8::1"),
        ("[::1]", "::1"),
        ("Bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_addresses_and_unicode_names_are_stored_as_urls_name_them(editor, written, stored):
    response = editor.post("/api/hosts/", {"host": written}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["host"] == stored


def test_a_host_name_with_a_line_break_is_refused(editor):
    response = editor.post("/api/hosts/", {"host": "a\n.example"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("host:")


def test_deleting_a_host_forgets_its_failures_so_its_breaker_does_not_come_back(
    superuser, settings, tripped
):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, breaker_min_calls=4)
    breaker.add_to_window(tripped.host, int(time.time()), 10, 10)

    assert superuser.delete(f"{HOSTS}{tripped.host}/").status_code == 204
    breaker.judge(tripped.host, breaker.BreakerSettings.current())

    assert not HostWindow.objects.filter(host=tripped.host).exists()
    assert not Host.objects.filter(host=tripped.host).exists()
