"""The project's expression functions, and registering a new one with one decorator."""

import base64
import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime

import pytest

from expressions import ExpressionError, function, registered_functions, render
from expressions.registry import FUNCTIONS

LINES = [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]
CONTEXT = {"input": {"lines": LINES, "when": "2026-03-01T10:00:00+00:00", "day": "2026-03-01"}}


def value(template: str):
    return render(template, CONTEXT)


def test_now_is_the_current_utc_time_as_iso_or_formatted():
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = datetime.fromisoformat(value("{{ now() }}"))
    assert before <= stamp <= datetime.now(UTC)
    assert value('{{ "%Y" | now }}') == str(datetime.now(UTC).year)


def test_format_datetime_formats_an_iso_time():
    assert value('{{ input.when | format_datetime("%d.%m.%Y %H:%M") }}') == "01.03.2026 10:00"


def test_add_days_moves_dates_and_times():
    assert value("{{ input.day | add_days(30) }}") == "2026-03-31"
    assert value("{{ input.when | add_days(-1) }}") == "2026-02-28T10:00:00+00:00"


def test_add_hours_moves_a_time():
    assert value("{{ input.when | add_hours(15) }}") == "2026-03-02T01:00:00+00:00"


def test_uuid_is_random_alone_and_stable_for_a_value():
    first, second = value("{{ uuid() }}"), value("{{ uuid() }}")
    assert uuid.UUID(first) and first != second
    assert value("{{ 'order-1' | uuid }}") == value("{{ 'order-1' | uuid }}")
    assert value("{{ 'order-1' | uuid }}") != value("{{ 'order-2' | uuid }}")


def test_json_and_from_json_round_trip():
    assert value("{{ input.lines | json }}") == '[{"sku":"A","qty":1},{"sku":"B","qty":2}]'
    assert value("{{ (input.lines | json | from_json)[1].sku }}") == "B"


def test_b64encode_and_b64decode():
    assert value("{{ 'user:pass' | b64encode }}") == base64.b64encode(b"user:pass").decode()
    assert value("{{ 'dXNlcjpwYXNz' | b64decode }}") == "user:pass"


def test_urlencode_is_jinjas_own():
    assert value("{{ {'q': 'a b', 'n': 1} | urlencode }}") == "q=a+b&n=1"


def test_sha256_hashes_text():
    assert value("{{ 'abc' | sha256 }}") == hashlib.sha256(b"abc").hexdigest()


def test_hmac_sha256_signs_in_hex_or_base64():
    expected = hmac.new(b"key", b"payload", hashlib.sha256)
    assert value("{{ 'payload' | hmac_sha256('key') }}") == expected.hexdigest()
    assert (
        value("{{ 'payload' | hmac_sha256('key', 'base64') }}")
        == base64.b64encode(expected.digest()).decode()
    )


def test_pluck_and_find_pick_from_lists_of_objects():
    assert value("{{ input.lines | pluck('sku') }}") == ["A", "B"]
    assert value("{{ (input.lines | find('sku', 'B')).qty }}") == 2
    assert value("{{ input.lines | find('sku', 'Z') }}") is None


def test_keys_and_values_of_an_object():
    assert value("{{ input.lines[0] | keys }}") == ["sku", "qty"]
    assert value("{{ input.lines[0] | values }}") == ["A", 1]


def test_a_function_registered_with_the_decorator_is_usable_and_listed():
    @function("cents")
    def cents(amount):
        """An amount in cents, as a whole number."""
        return round(amount * 100)

    try:
        assert render("{{ 12.34 | cents }}", {}) == 1234
        listed = {info.name: info for info in registered_functions()}
        assert listed["cents"].doc == "An amount in cents, as a whole number."
        assert listed["cents"].builtin is False
        assert listed["first"].builtin is True
    finally:
        FUNCTIONS.pop("cents")


def test_every_project_function_has_a_doc():
    for info in registered_functions():
        if not info.builtin:
            assert info.doc and re.match(r"^\(.*\)$", info.signature), info.name


def test_a_function_given_a_bad_value_fails_naming_the_expression():
    with pytest.raises(ExpressionError, match=r'"\{\{ \'nope\' \| add_days\(1\) \}\}"'):
        render("{{ 'nope' | add_days(1) }}", {})
