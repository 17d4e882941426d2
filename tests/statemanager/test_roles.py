"""The roles of contract section 7, at each boundary of the API."""

import pytest

from tests.statemanager.fixtures import shop_order

ORDER = {"order_id": "A-1", "workflow": "shop", "payload": {"sku": "mug", "qty": 1}}
API_CALL = {"slug": "x.ping", "name": "Ping", "method": "GET", "url": "http://127.0.0.1:9/"}


def test_integrations_can_post_orders(integration, shop):
    assert integration.post("/api/orders/", ORDER, format="json").status_code == 201


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/orders/"),
        ("get", "/api/orders/A-1/"),
        ("post", "/api/orders/A-1/reprocess/"),
        ("post", "/api/orders/reprocess/"),
        ("post", "/api/orders/A-1/cancel/"),
        ("get", "/api/blueprints/"),
        ("get", "/api/api-calls/"),
        ("post", "/api/api-calls/"),
    ],
)
def test_integrations_cannot_do_anything_else(integration, shop, method, path):
    shop_order("A-1", "failed")

    response = getattr(integration, method)(path, {"order_ids": ["A-1"]}, format="json")

    assert response.status_code == 403


def test_support_reads_and_reprocesses_orders(support, shop):
    shop_order("A-1", "failed")

    assert support.get("/api/orders/").status_code == 200
    assert support.get("/api/orders/A-1/").status_code == 200
    assert support.post("/api/orders/A-1/reprocess/").status_code == 202
    assert support.post("/api/orders/A-1/cancel/").status_code == 202


def test_support_reads_but_cannot_edit_definitions(support, shop):
    assert support.get("/api/blueprints/shop/").status_code == 200
    assert support.post("/api/api-calls/", API_CALL, format="json").status_code == 403
    assert support.patch("/api/blueprints/shop/", {"name": "S"}, format="json").status_code == 403
    assert support.delete("/api/blueprints/shop/").status_code == 403


def test_support_cannot_post_orders(support, shop):
    assert support.post("/api/orders/", ORDER, format="json").status_code == 403


def test_editors_edit_definitions_and_read_orders(editor, shop):
    shop_order("A-1", "failed")

    assert editor.post("/api/api-calls/", API_CALL, format="json").status_code == 201
    assert editor.patch("/api/blueprints/shop/", {"name": "S"}, format="json").status_code == 200
    assert editor.get("/api/orders/A-1/").status_code == 200
    assert editor.post("/api/orders/A-1/reprocess/").status_code == 403


def test_superusers_can_do_everything(superuser, shop):
    assert superuser.post("/api/orders/", ORDER, format="json").status_code == 201
    assert superuser.post("/api/orders/A-1/cancel/").status_code == 202
    assert superuser.post("/api/api-calls/", API_CALL, format="json").status_code == 201


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/orders/"),
        ("post", "/api/orders/"),
        ("get", "/api/orders/A-1/"),
        ("post", "/api/orders/A-1/reprocess/"),
        ("post", "/api/orders/reprocess/"),
        ("post", "/api/orders/A-1/cancel/"),
        ("get", "/api/blueprints/"),
        ("delete", "/api/blueprints/shop/"),
        ("get", "/api/api-calls/"),
    ],
)
def test_anonymous_gets_401(anonymous, shop, method, path):
    shop_order("A-1", "failed")

    response = getattr(anonymous, method)(path, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
