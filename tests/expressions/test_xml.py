"""The `xml` function: an XML response body read into an object, and what it refuses."""

import pytest

from expressions import ExpressionError, render
from expressions.guards import MAX_BODY_DEPTH, MAX_BODY_TEXT

SOAP = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:m="https://example.com/stock">
  <soap:Body>
    <m:GetPriceResponse>
      <m:Price currency="EUR">34.50</m:Price>
      <m:Tier>gold</m:Tier>
      <m:Tier>silver</m:Tier>
    </m:GetPriceResponse>
  </soap:Body>
</soap:Envelope>"""


def read(body, template="{{ response.body | xml }}"):
    return render(template, {"response": {"body": body}})


def test_elements_are_keys_and_their_text_the_value():
    assert read("<order><id>A-1</id><total>12.5</total></order>") == {
        "order": {"id": "A-1", "total": "12.5"}
    }


def test_attributes_are_at_names_and_text_beside_them_is_hash_text():
    assert read('<price currency="EUR" net="true">34.50</price>') == {
        "price": {"@currency": "EUR", "@net": "true", "#text": "34.50"}
    }


def test_repeated_elements_are_a_list():
    assert read("<lines><sku>TEE</sku><sku>CAP</sku><sku>MUG</sku></lines>") == {
        "lines": {"sku": ["TEE", "CAP", "MUG"]}
    }


def test_mixed_text_and_children_keep_the_text_as_hash_text():
    assert read("<p>Hello <b>world</b>again</p>") == {"p": {"b": "world", "#text": "Hello again"}}


def test_an_empty_element_is_null():
    assert read("<a><b/></a>") == {"a": {"b": None}}


def test_names_keep_their_namespace_prefix_and_declarations_are_attributes():
    value = read(SOAP)
    response = value["soap:Envelope"]["soap:Body"]["m:GetPriceResponse"]
    assert value["soap:Envelope"]["@xmlns:soap"] == "http://schemas.xmlsoap.org/soap/envelope/"
    assert response["m:Price"] == {"@currency": "EUR", "#text": "34.50"}
    assert response["m:Tier"] == ["gold", "silver"]


def test_a_soap_answer_is_read_in_one_expression_without_prefixes():
    template = (
        "{{ (response.body | xml(prefixes=false)).Envelope.Body.GetPriceResponse.Price['#text'] }}"
    )
    assert read(SOAP, template) == "34.50"


def test_without_prefixes_namespace_declarations_are_dropped():
    body = '<s:E xmlns:s="urn:s" xmlns="urn:d" s:kind="k"><s:B>1</s:B></s:E>'
    assert read(body, "{{ response.body | xml(prefixes=false) }}") == {
        "E": {"@kind": "k", "B": "1"}
    }


def test_an_encoding_declaration_does_not_change_text_already_decoded():
    assert read('<?xml version="1.0" encoding="ISO-8859-1"?><name>Zoë</name>') == {"name": "Zoë"}


def test_predefined_entities_and_character_references_are_read():
    assert read("<q>a &amp; b &lt; c &#233;</q>") == {"q": "a & b < c é"}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<r>&secret;</r>"""


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, '<!DOCTYPE r SYSTEM "http://example.com/r.dtd"><r/>'],
    ids=["billion-laughs", "external-entity", "external-dtd"],
)
def test_dtds_and_entities_are_refused(body):
    with pytest.raises(ExpressionError, match=r"DTDs and entities \(<!DOCTYPE …>\) are refused"):
        read(body)


@pytest.mark.parametrize(
    ("body", "position"),
    [("not xml", "line 1, column 0"), ("<a>\n<b></a>", "line 2, column 5"), ("", "line 1")],
)
def test_text_that_is_not_xml_names_the_line_and_column(body, position):
    with pytest.raises(ExpressionError) as refused:
        read(body)
    assert str(refused.value).startswith('"{{ response.body | xml }}": xml: not XML (')
    assert position in str(refused.value)


def test_elements_nested_too_deeply_are_refused():
    body = "<a>" * (MAX_BODY_DEPTH + 1) + "</a>" * (MAX_BODY_DEPTH + 1)
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_BODY_DEPTH} levels"):
        read(body)


def test_nesting_at_the_bound_is_read():
    body = "<a>" * MAX_BODY_DEPTH + "</a>" * MAX_BODY_DEPTH
    value = read(body)
    for _ in range(MAX_BODY_DEPTH - 1):
        value = value["a"]
    assert value == {"a": None}


def test_repeated_elements_that_make_the_value_too_deep_are_refused():
    body = "<a><a/>" * 40 + "</a>" * 40  # 40 elements deep, but each level adds a list
    with pytest.raises(ExpressionError, match=f"xml: nested deeper than {MAX_BODY_DEPTH}"):
        read(body)


def test_a_text_too_large_is_refused_with_the_bound():
    body = "<a>" + "x" * MAX_BODY_TEXT + "</a>"
    with pytest.raises(ExpressionError, match=f"more than {MAX_BODY_TEXT}\\)"):
        read(body)


@pytest.mark.parametrize("body", [42, ["<a/>"], {"a": 1}, None])
def test_a_value_that_is_not_text_is_refused(body):
    with pytest.raises(ExpressionError, match="xml: expects text, not"):
        read(body)
