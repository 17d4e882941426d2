"""What every API view shares: permissions, the error shape, the router, definitions CRUD."""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from definitions.storable import text_problem, unstorable, unstorable_fields
from definitions.validation import DefinitionError, definition_warnings, join_place

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


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."


def storable_body(data: Any) -> Any:
    """The request body, once no string or key in it is text PostgreSQL cannot store and
    no field nests deeper than STATE_MANAGER_MAX_JSON_DEPTH; else a 400 naming each place.

    Called before a serializer sees the body: a serializer would store such text, or
    recurse through such nesting.
    """
    problems = unstorable_fields(data) if isinstance(data, dict) else unstorable(data)
    if problems:
        raise BadRequest([f"{join_place('', path) or 'body'}: {why}" for path, why in problems])
    return data


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


class DefinitionViewSet(viewsets.GenericViewSet):
    """CRUD by slug on API calls or blueprints, in the contract's JSON.

    Every write goes through the definitions' save service, so the API validates exactly as
    the admin and the import command do. Subclasses name the model's services.
    """

    lookup_field = "slug"
    lookup_value_regex = "[A-Za-z0-9._-]+"
    permission_classes = [ModelPermissions]
    pagination_class = Pagination
    filter_backends = []
    noun = "definition"

    def save(self, definition: dict, user) -> Any:
        raise NotImplementedError

    def remove(self, instance) -> None:
        raise NotImplementedError

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, slug=None):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        definition = self.body(request)
        slug = definition.get("slug")
        # Text the database cannot store is for the validator to name, not to look up.
        storable = isinstance(slug, str) and not text_problem(slug)
        if storable and self.get_queryset().filter(slug=slug).exists():
            raise BadRequest([f'slug: {self.noun} "{definition["slug"]}" exists already'])
        instance = self.saved(definition, request)
        return Response(self.saved_data(instance), status=status.HTTP_201_CREATED)

    def update(self, request, slug=None):
        instance = self.get_object()
        definition = {"slug": instance.slug, **self.body(request)}
        return self.replaced(instance, definition, request)

    def partial_update(self, request, slug=None):
        instance = self.get_object()
        definition = {**instance.as_definition(), **self.body(request)}
        return self.replaced(instance, definition, request)

    def destroy(self, request, slug=None):
        instance = self.get_object()
        try:
            self.remove(instance)
        except DefinitionError as exc:
            raise BadRequest(exc.errors) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    def replaced(self, instance, definition: dict, request) -> Response:
        if definition.get("slug") != instance.slug:
            raise BadRequest(["slug: must match the URL; a slug cannot be changed"])
        return Response(self.saved_data(self.saved(definition, request)))

    def saved_data(self, instance) -> dict:
        """The saved definition, and its `warnings` when it has any (a secret not set on
        this machine): the definition is saved all the same."""
        data = self.get_serializer(instance).data
        warnings = definition_warnings(instance.as_definition())
        return {**data, "warnings": warnings} if warnings else data

    def saved(self, definition: dict, request):
        try:
            return self.save(definition, request.user)
        except DefinitionError as exc:
            raise BadRequest(exc.errors) from exc

    @staticmethod
    def body(request) -> dict:
        if not isinstance(request.data, dict):
            raise BadRequest(["body: must be a JSON object"])
        return dict(request.data)


def definition_schema(noun: str, serializer) -> Any:
    """The OpenAPI description of a DefinitionViewSet, with its error responses."""
    denied = {401: Detail, 403: Detail}
    invalid = {400: OpenApiResponse(Errors, description="Every problem, each with its place.")}
    saved = OpenApiResponse(
        serializer,
        description=f"The saved {noun}, plus `warnings` (a list of `<place>: <reason>`) when "
        "a template reads a secret whose environment variable is not set on this machine.",
    )
    return extend_schema_view(
        list=extend_schema(summary=f"List {noun}s", responses={200: serializer, **denied}),
        retrieve=extend_schema(
            summary=f"One {noun}", responses={200: serializer, 404: Detail, **denied}
        ),
        create=extend_schema(
            summary=f"Create {noun}",
            request=serializer,
            responses={201: saved, **invalid, **denied},
        ),
        update=extend_schema(
            summary=f"Replace {noun}",
            request=serializer,
            responses={200: saved, **invalid, 404: Detail, **denied},
        ),
        partial_update=extend_schema(
            summary=f"Change some keys of {noun}",
            request=serializer(partial=True),
            responses={200: saved, **invalid, 404: Detail, **denied},
        ),
        destroy=extend_schema(
            summary=f"Delete {noun}",
            description=f"Refused (400) while a blueprint uses the {noun}."
            if noun == "API call"
            else "Orders already created keep their snapshot.",
            responses={204: None, **invalid, 404: Detail, **denied},
        ),
    )
