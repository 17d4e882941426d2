"""The OpenAPI schema is complete and valid; its pages are served without the internet."""

import pytest
from django.core.management import call_command


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns any incomplete annotation into a failure.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )


def test_schema_is_served(support, db):
    response = support.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert "/api/orders/{order_id}/reprocess/" in schema["paths"]
    assert {"tokenAuth": []} in schema["paths"]["/api/orders/"]["post"]["security"]
    assert "security" not in schema["paths"]["/api/callbacks/{token}/"]["post"]


def test_docs_page_uses_the_bundled_swagger_ui(admin_client):
    response = admin_client.get("/api/docs/")

    assert response.status_code == 200
    assert "drf_spectacular_sidecar" in response.content.decode()
    assert "cdn" not in response.content.decode().lower()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_schema_and_its_page_are_not_for_anonymous_callers_nor_webhook_tokens(
    client, integration, path
):
    assert client.get(path).status_code in (401, 403)
    assert integration.get(path).status_code == 403
