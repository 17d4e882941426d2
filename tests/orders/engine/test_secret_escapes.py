"""A partner's own encodings of a secret it echoes are masked like the engine's: JSON's
`\\uXXXX` escapes in a raw body (any mix, either hex case), percent-encoding in either hex
case, and a header's UTF-8 bytes as `requests` decodes them (ISO-8859-1)."""

import json
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from orders.models import Callback, Order, StepLog
from tests.localserver import Reply
from tests.orders.engine.test_secrets import everything_stored, secret_forms
from tests.orders.workflows import api_call, make_order, process
from tests.statemanager.fixtures import token_client, user_in

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = 's+cr"\u00ebt'
# JSON text as a partner may write it: every character escaped, or some, in either case.
ESCAPED = "".join(f"\\u{ord(character):04x}" for character in SECRET)
ESCAPED_UPPER = "".join(f"\\u{ord(character):04X}" for character in SECRET)
MIXED = "s\\u002bcr\\u0022\\u00ebt"  # the brief's example
MIXED_UPPER = 's\\u002Bcr\\"\\u00EBt'
PERCENT_UPPER = quote(SECRET, safe="")
PERCENT_LOWER = "s%2bcr%22%c3%abt"
# The secret's UTF-8 bytes in a header, as http.client decodes them (ISO-8859-1).
HEADER_BYTES = SECRET.encode().decode("latin-1")
ECHOED = [ESCAPED, ESCAPED_UPPER, MIXED, MIXED_UPPER, PERCENT_UPPER, PERCENT_LOWER, HEADER_BYTES]


def leaks(text: str) -> list[str]:
    """The forms of the secret found in `text`, also as JSON-escaped again (the API's JSON
    of a stored string shows each backslash doubled)."""
    forms = secret_forms(SECRET) | set(ECHOED)
    forms |= {SECRET.encode("unicode_escape").decode(), repr(SECRET.encode())[2:-1]}
    forms |= {form.replace("\\", "\\\\") for form in forms}
    forms |= {json.dumps(form)[1:-1] for form in forms}
    return sorted(form for form in forms if form in text)


def raw_echo(_request) -> Reply:
    """The secret in the body's raw JSON text and in headers, in the partner's encodings."""
    text = "{" + ", ".join(f'"f{i}": "{form}"' for i, form in enumerate(ECHOED[:5])) + "}"
    headers = {
        "X-Echo-Bytes": HEADER_BYTES,
        "X-Echo-Escaped": MIXED,
        "X-Echo-Quoted": PERCENT_LOWER,
        "Location": f"/next?t={PERCENT_LOWER}&u={PERCENT_UPPER}",
    }
    return Reply(200, text, headers=headers)


def order_detail(order: Order) -> str:
    client = token_client(user_in("Support"))
    response = client.get(f"/api/orders/{order.order_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_secret_a_partner_echoes_in_its_own_escapes_is_stored_masked(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_TOKEN", SECRET)
    server.route("POST", "/echo", raw_echo)
    calls = [api_call("echo", server.url + "/echo", body={"t": "{{ secrets.TOKEN }}"})]
    order = process(make_order([{"id": "echo", "call": "echo"}], calls))

    assert order.status == Order.Status.COMPLETED, order.error
    assert server.requests_to("/echo")[0].body == {"t": SECRET}
    (logged,) = StepLog.objects.filter(order=order, kind="attempt")
    assert isinstance(logged.response["body"], str)  # kept as the raw text it was
    assert "***" in logged.response["body"] and "***" in logged.response["headers"]["X-Echo-Bytes"]
    rows = json.dumps([row.response for row in StepLog.objects.all()], ensure_ascii=False)
    assert leaks(rows) == []
    assert leaks(everything_stored()) == []
    assert leaks(order_detail(order)) == []


def test_a_secret_in_a_callbacks_embedded_json_text_is_stored_masked(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_TOKEN", SECRET)
    server.route("POST", "/pay", Reply(200))
    steps = [
        {
            "id": "pay",
            "call": "pay",
            "wait_for_callback": {"timeout_seconds": 600},
            "save": {"called_back": "{{ callback.data }}"},
        }
    ]
    order = process(make_order(steps, [api_call("pay", server.url + "/pay")]))
    assert order.status == Order.Status.WAITING, order.error
    token = Callback.objects.get(order=order).token
    # A partner's webhook carrying its own JSON document as text, and a link it built.
    inner = "{" + ", ".join(f'"f{i}": "{form}"' for i, form in enumerate(ECHOED[:4])) + "}"
    posted = {
        "outcome": "success",
        "data": {"document": inner, "link": f"https://p.example/?t={PERCENT_LOWER}"},
    }
    answer = APIClient().post(
        f"/api/callbacks/{token}/", json.dumps(posted), content_type="application/json"
    )
    assert answer.status_code == 202
    order = process(order)

    assert order.status == Order.Status.COMPLETED, order.error
    assert "***" in order.data["called_back"]["document"]
    rows = json.dumps([row.response for row in StepLog.objects.all()], ensure_ascii=False)
    assert leaks(rows) == []
    assert leaks(everything_stored()) == []
    assert leaks(order_detail(order)) == []
