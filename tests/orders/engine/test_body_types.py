"""Bodies go out as their API call's body_type says, and the step log shows them as sent."""

import base64
import email
from email import policy
from urllib.parse import parse_qs, parse_qsl

import pytest

from orders.models import Order
from tests.localserver import Reply
from tests.orders.workflows import api_call, attempts, make_order, process

pytestmark = pytest.mark.django_db(transaction=True)

SOAP_ANSWER = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <CreateShipmentResponse xmlns="urn:carrier">
      <Shipment id="S-9"><Tracking>TRK-1</Tracking><Tracking>TRK-2</Tracking></Shipment>
    </CreateShipmentResponse>
  </soap:Body>
</soap:Envelope>"""


def test_a_form_body_is_sent_in_bracket_notation_as_stripe_reads_it(server):
    server.route("POST", "/v1/payment_intents", Reply(200, {"id": "pi_1"}))
    charge = api_call(
        "charge",
        server.url + "/v1/payment_intents",
        body_type="form",
        body={
            "amount": "{{ input.amount }}",
            "currency": "eur",
            "metadata": {"order_id": "{{ order.order_id }}", "note": "a b&c"},
            "items": [{"sku": "TEE", "qty": 2}, {"sku": "CAP", "qty": 1}],
            "expand": ["latest_charge", "customer"],
            "capture": True,
            "description": None,
        },
    )

    order = process(
        make_order(
            [{"id": "pay", "call": "charge"}], [charge], order_id="A-1", payload={"amount": 2000}
        )
    )

    assert order.status == Order.Status.COMPLETED, order.error
    (received,) = server.requests_to("/v1/payment_intents")
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    # Each field once, lists in their order; the fields' own order is the stored object's
    # (PostgreSQL's jsonb keeps keys in an order of its own).
    assert parse_qs(received.raw.decode(), strict_parsing=True) == {
        "amount": ["2000"],
        "currency": ["eur"],
        "metadata[order_id]": ["A-1"],
        "metadata[note]": ["a b&c"],
        "items[0][sku]": ["TEE"],
        "items[0][qty]": ["2"],
        "items[1][sku]": ["CAP"],
        "items[1][qty]": ["1"],
        "expand[]": ["latest_charge", "customer"],
        "capture": ["true"],
    }
    assert len(parse_qsl(received.raw.decode())) == 11
    (attempt,) = attempts(order)
    assert attempt.request["body"] == received.raw.decode()


def test_a_multipart_body_sends_fields_and_files(server):
    server.route("POST", "/upload", Reply(201, {"ok": True}))
    pdf = b"%PDF-1.4\x00\xff binary"
    upload = api_call(
        "upload",
        server.url + "/upload",
        body_type="multipart",
        body={
            "reference": "{{ order.order_id }}",
            "note": {
                "filename": "note.txt",
                "content_type": "text/plain",
                "content": "hello {{ input.name }}",
            },
            "label": {
                "filename": "label.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(pdf).decode(),
            },
        },
    )

    order = process(
        make_order(
            [{"id": "up", "call": "upload"}], [upload], order_id="M-1", payload={"name": "Ada"}
        )
    )

    assert order.status == Order.Status.COMPLETED, order.error
    (received,) = server.requests_to("/upload")
    message = email.message_from_bytes(
        f"Content-Type: {received.headers['Content-Type']}\r\n\r\n".encode() + received.raw,
        policy=policy.HTTP,
    )
    parts = {
        part.get_param("name", header="content-disposition"): part for part in message.iter_parts()
    }
    assert parts["reference"].get_content() == "M-1"
    assert parts["note"].get_filename() == "note.txt"
    assert parts["note"].get_content().strip() == "hello Ada"
    assert parts["label"].get_content_type() == "application/pdf"
    assert parts["label"].get_content() == pdf
    (attempt,) = attempts(order)
    assert {
        "name": "label",
        "filename": "label.pdf",
        "content_type": "application/pdf",
        "bytes": len(pdf),
    } in attempt.request["body"]


def test_a_text_body_calls_a_soap_carrier_and_its_xml_answer_is_read(server):
    def carrier(request):
        assert b"<ref>S-1</ref>" in request.raw
        return Reply(200, SOAP_ANSWER, headers={"Content-Type": "text/xml; charset=utf-8"})

    server.route("POST", "/soap", carrier)
    ship = api_call(
        "ship",
        server.url + "/soap",
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "CreateShipment"},
        body_type="text",
        body=(
            "<soap:Envelope><soap:Body><Create><ref>{{ order.order_id }}</ref></Create>"
            "</soap:Body></soap:Envelope>"
        ),
        save={
            "shipment": "{{ (response.body | xml)['soap:Envelope']['soap:Body']"
            ".CreateShipmentResponse.Shipment['@id'] }}",
            "tracking": "{{ (response.body | xml(prefixes=false)).Envelope.Body"
            ".CreateShipmentResponse.Shipment.Tracking }}",
        },
    )

    order = process(make_order([{"id": "ship", "call": "ship"}], [ship], order_id="S-1"))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"shipment": "S-9", "tracking": ["TRK-1", "TRK-2"]}
    (received,) = server.requests_to("/soap")
    assert received.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert received.headers["SOAPAction"] == "CreateShipment"


def test_a_text_body_without_a_content_type_is_plain_text(server):
    server.route("POST", "/t", Reply(200, {}))
    note = api_call("note", server.url + "/t", body_type="text", body="order {{ order.order_id }}")

    order = process(make_order([{"id": "n", "call": "note"}], [note], order_id="T-1"))

    assert order.status == Order.Status.COMPLETED, order.error
    (received,) = server.requests_to("/t")
    assert received.raw == b"order T-1"
    assert received.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_form_answer_is_read_with_the_form_function(server):
    server.route("POST", "/token", Reply(200, "access_token=t%2B1&scope=a+b&expires_in=60"))
    call = api_call("t", server.url + "/token", save={"answer": "{{ response.body | form }}"})

    order = process(make_order([{"id": "t", "call": "t"}], [call]))

    assert order.status == Order.Status.COMPLETED, order.error
    assert order.data == {"answer": {"access_token": "t+1", "scope": "a b", "expires_in": "60"}}


def test_a_file_part_that_is_not_base64_fails_the_step_naming_it(server):
    upload = api_call(
        "upload",
        server.url + "/upload",
        body_type="multipart",
        body={"label": {"filename": "l.pdf", "content_base64": "not base64!"}},
    )

    order = process(make_order([{"id": "up", "call": "upload"}], [upload]))

    assert order.status == Order.Status.FAILED
    assert "body.label.content_base64: not base64" in order.error
    assert server.requests_to("/upload") == []


def test_a_secret_escaped_into_xml_or_encoded_in_base64_is_masked_in_the_log(server, monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_CARRIER_PASSWORD", "p<ss&'wörd")
    server.fallback = lambda request: Reply(200, request.raw.decode())
    call = api_call(
        "soap",
        server.url + "/soap",
        headers={"X-Auth": "{{ secrets.CARRIER_PASSWORD | b64encode }}"},
        body_type="text",
        body="<Login><Password>{{ secrets.CARRIER_PASSWORD | e }}</Password></Login>",
    )

    order = process(make_order([{"id": "s", "call": "soap"}], [call]))

    assert order.status == Order.Status.COMPLETED, order.error
    (received,) = server.received
    assert b"p&lt;ss&amp;&#39;w\xc3\xb6rd" in received.raw
    (attempt,) = attempts(order)
    assert attempt.request["body"] == "<Login><Password>***</Password></Login>"
    assert attempt.request["headers"]["X-Auth"] == "***"
    assert attempt.response["body"] == "<Login><Password>***</Password></Login>"
