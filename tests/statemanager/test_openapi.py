"""The OpenAPI schema is complete and valid; its pages are served without the internet."""

from django.core.management import call_command


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns any incomplete annotation into a failure.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )


def test_schema_is_served(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert "/api/orders/{order_id}/reprocess/" in schema["paths"]
    assert {"tokenAuth": []} in schema["paths"]["/api/orders/"]["post"]["security"]
    assert "security" not in schema["paths"]["/api/callbacks/{token}/"]["post"]


def test_docs_page_uses_the_bundled_swagger_ui(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert "drf_spectacular_sidecar" in response.content.decode()
    assert "cdn" not in response.content.decode().lower()
