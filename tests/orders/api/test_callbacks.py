"""POST /api/callbacks/{token}/: the token in the URL is the only credential."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Callback, Order
from tests.statemanager.fixtures import *  # noqa: F403


def test_success_resumes_the_waiting_order_without_an_api_token(anonymous, waiting):
    response = anonymous.post(
        "/api/callbacks/tok-1/", {"outcome": "success", "data": {"paid": True}}, format="json"
    )

    assert response.status_code == 202
    assert response.json() == {"order_id": "A-1", "status": "pending"}
    assert Callback.objects.get(token="tok-1").data == {"paid": True}
    assert Order.objects.get(order_id="A-1").status == "pending"


def test_unknown_token_is_404(anonymous, waiting):
    response = anonymous.post("/api/callbacks/nope/", {"outcome": "success"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "No callback has this token."}


def test_used_token_is_409(anonymous, waiting):
    anonymous.post("/api/callbacks/tok-1/", {"outcome": "failure"}, format="json")

    response = anonymous.post("/api/callbacks/tok-1/", {"outcome": "success"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "this callback was already failed"}
    assert Callback.objects.get(token="tok-1").status == "failed"


def test_expired_token_is_409(anonymous, waiting):
    Callback.objects.filter(pk=waiting.pk).update(expires_at=timezone.now() - timedelta(1))

    response = anonymous.post("/api/callbacks/tok-1/", {"outcome": "success"}, format="json")

    assert response.status_code == 409
    assert Callback.objects.get(token="tok-1").status == "expired"


def test_bad_outcome_is_400(anonymous, waiting):
    response = anonymous.post("/api/callbacks/tok-1/", {"outcome": "maybe"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("outcome: ")
    assert Callback.objects.get(token="tok-1").status == "waiting"


def test_a_value_error_not_about_the_outcome_is_not_answered_as_one(
    anonymous, waiting, monkeypatch
):
    def unreadable_secrets():
        raise ValueError("STATE_MANAGER_SECRET_KEY is not valid base64")

    monkeypatch.setattr("orders.callbacks.load_secrets", unreadable_secrets)

    with pytest.raises(ValueError, match="not valid base64"):  # a 500, not "outcome: …"
        anonymous.post("/api/callbacks/tok-1/", {"outcome": "success"}, format="json")
    assert Callback.objects.get(token="tok-1").status == "waiting"


def test_callback_is_in_the_order_log(support, waiting):
    support.post("/api/callbacks/tok-1/", {"outcome": "success", "data": {}}, format="json")

    log = support.get("/api/orders/A-1/").json()["log"]

    assert [(e["kind"], e["step"], e["outcome"]) for e in log] == [
        ("callback", "charge", "succeeded")
    ]
