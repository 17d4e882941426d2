"""core.api's exception handler: each service error answered with its own status, once."""

from __future__ import annotations

from core.api import exception_handler
from core.errors import ServiceError


class Refused(ServiceError):
    pass


class Taken(ServiceError):
    status_code = 409


class Hidden(ServiceError):
    status_code = 404
    detail = "No such thing."


def answer(exc: Exception):
    response = exception_handler(exc, {})
    return response.status_code, response.data


def test_a_service_error_is_a_400_listing_its_reasons():
    assert answer(Refused("workflow: no blueprint")) == (
        400,
        {"errors": ["workflow: no blueprint"]},
    )


def test_a_service_error_with_another_status_says_its_message_as_the_detail():
    assert answer(Taken("order A-1 exists")) == (409, {"detail": "order A-1 exists"})


def test_a_service_error_may_say_another_detail_than_its_message():
    assert answer(Hidden("tok-1")) == (404, {"detail": "No such thing."})


def test_any_other_error_is_left_to_raise():
    assert exception_handler(ValueError("a bug"), {}) is None
