"""What every API view shares: permissions, pagination, the error shapes, the exception
handler and the router."""

from __future__ import annotations

import time
from typing import Any

from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import ServiceError, join_place

# How long a token's answer from ActionPermissions is kept (see there).
PERMISSION_CACHE_SECONDS = 10.0


class ActionPermissions(BasePermission):
    """Each view maps its actions to the permissions they need (`view.action_permissions`).

    An action the map leaves out is refused; superusers have every permission. For a
    token, the answer for the actions a view lists in `cached_permission_actions` (the
    webhook) is kept in process memory for PERMISSION_CACHE_SECONDS: Django's check costs
    two queries, as much as the rest of a webhook post. So a permission or group taken
    away still counts that long there, while a deleted token or a deactivated user is
    refused at once (DRF reads the token and its user on every request).
    """

    granted: dict[tuple, tuple[bool, float]] = {}

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required = view.action_permissions.get(view.action)
        if required is None:
            return False
        token = getattr(request.auth, "key", None)
        if token is None or view.action not in getattr(view, "cached_permission_actions", ()):
            return user.has_perms(required)
        key = (token, user.pk, tuple(required))
        now = time.monotonic()
        answer = self.granted.get(key)
        if answer is None or answer[1] < now:
            if len(self.granted) > 10_000:  # tokens since deleted: forget them all now and then
                self.granted.clear()
            answer = (user.has_perms(required), now + PERMISSION_CACHE_SECONDS)
            self.granted[key] = answer
        return answer[0]


class ReadsTheApi(BasePermission):
    """The OpenAPI schema and its page: for the people and tokens that use the API beyond
    the webhook (staff, or a user with some permission to view), not for a token that
    may only post orders (the Integrations role)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.is_staff or user.is_superuser:
            return True
        return any(".view_" in permission for permission in user.get_all_permissions())


class ModelPermissions(DjangoModelPermissions):
    """DjangoModelPermissions that also needs the model's `view` permission to read."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class Pagination(PageNumberPagination):
    """PAGE_SIZE per page unless the client asks for `page_size` (at most 1000)."""

    page_size_query_param = "page_size"
    max_page_size = 1000


class Errors(serializers.Serializer):
    """Every 400: a list of problems, each `"<place>: <reason>"`."""

    errors = serializers.ListField(child=serializers.CharField())


class Detail(serializers.Serializer):
    """Every other error: one sentence."""

    detail = serializers.CharField()


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, with every 400 in one shape, {"errors": ["<place>: <reason>", ...]},
    and each service's refusal answered with its own status: the one place where errors
    become HTTP responses."""
    if isinstance(exc, ServiceError):
        set_rollback()
        if exc.status_code == status.HTTP_400_BAD_REQUEST:
            return Response({"errors": exc.reasons}, status=exc.status_code)
        return Response({"detail": exc.detail}, status=exc.status_code)
    if isinstance(exc, BadRequest):
        return Response({"errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": [f"body: {exc.detail}"]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"errors": flat_errors(exc.detail)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def flat_errors(detail: Any, place: str = "") -> list[str]:
    """DRF's nested error detail as `"<place>: <reason>"` lines."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            if key == "non_field_errors":
                lines += flat_errors(value, place)
            else:
                lines += flat_errors(value, join_place(place, [key]))
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [f"{place}: {item}" if place else str(item) for item in detail]
        lines = []
        for index, item in enumerate(detail):
            lines += flat_errors(item, f"{place}[{index}]")
        return lines
    return [f"{place}: {detail}" if place else str(detail)]


def api_router() -> SimpleRouter:
    """A router without format suffixes: slugs and order ids may contain dots."""
    return SimpleRouter()
