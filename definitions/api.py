"""The API's CRUD of definitions (API calls, blueprints by slug; connections by name), and
its OpenAPI description."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.response import Response

from core.api import ActionPermissions, BadRequest, Detail, Errors, ModelPermissions, Pagination
from core.storable import text_problem
from definitions.validation import definition_warnings


class DefinitionViewSet(viewsets.GenericViewSet):
    """CRUD by slug on API calls or blueprints (by `lookup_field`, the key of the contract's
    JSON that names one), in the contract's JSON.

    Every write goes through the definitions' save service, so the API validates exactly as
    the admin and the import command do. Subclasses name the model's services.
    """

    lookup_field = "slug"
    lookup_value_regex = "[A-Za-z0-9._-]+"
    permission_classes = [ModelPermissions]
    pagination_class = Pagination
    filter_backends = []
    noun = "definition"
    # The permissions of the actions beyond CRUD (pause, test), for ActionPermissions.
    action_permissions: dict[str, list[str]] = {}
    # The definitions' validator checks the body's text and nesting as the parser would, and
    # names a step by its index and id: `steps[0] (id "quote").save.total`.
    check_storable_body = False

    def get_permissions(self):
        if self.action in self.action_permissions:
            return [ActionPermissions()]
        return super().get_permissions()

    def save(self, definition: dict, user) -> Any:
        raise NotImplementedError

    def remove(self, instance) -> None:
        raise NotImplementedError

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request):
        definition, key = self.body(request), self.lookup_field
        value = definition.get(key)
        # Text the database cannot store is for the validator to name, not to look up.
        storable = isinstance(value, str) and not text_problem(value)
        if storable and self.get_queryset().filter(**{key: value}).exists():
            raise BadRequest([f'{key}: {self.noun} "{value}" exists already'])
        instance = self.saved(definition, request)
        return Response(self.saved_data(instance), status=status.HTTP_201_CREATED)

    def update(self, request, **kwargs):
        instance = self.get_object()
        definition = {self.lookup_field: getattr(instance, self.lookup_field), **self.body(request)}
        return self.replaced(instance, definition, request)

    def partial_update(self, request, **kwargs):
        instance = self.get_object()
        definition = {**instance.as_definition(), **self.body(request)}
        return self.replaced(instance, definition, request)

    def destroy(self, request, **kwargs):
        self.remove(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def replaced(self, instance, definition: dict, request) -> Response:
        key = self.lookup_field
        if definition.get(key) != getattr(instance, key):
            raise BadRequest([f"{key}: must match the URL; a {key} cannot be changed"])
        return Response(self.saved_data(self.saved(definition, request)))

    def saved_data(self, instance) -> dict:
        """The saved definition, and its `warnings` when it has any (a secret not set on
        this machine): the definition is saved all the same."""
        data = self.get_serializer(instance).data
        warnings = self.warnings(instance.as_definition())
        return {**data, "warnings": warnings} if warnings else data

    def warnings(self, definition: dict) -> list[str]:
        return definition_warnings(definition)

    def saved(self, definition: dict, request):
        return self.save(definition, request.user)

    @staticmethod
    def body(request) -> dict:
        if not isinstance(request.data, dict):
            raise BadRequest(["body: must be a JSON object"])
        return dict(request.data)


def definition_schema(noun: str, serializer, *, in_use: dict | None = None) -> Any:
    """The OpenAPI description of a DefinitionViewSet, with its error responses; `in_use`
    is the description and responses of a delete refused while the definition is used."""
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
            **(
                in_use
                or {
                    "description": f"Refused (400) while a blueprint uses the {noun}."
                    if noun == "API call"
                    else "Orders already created keep their snapshot.",
                    "responses": {204: None, **invalid, 404: Detail, **denied},
                }
            ),
        ),
    )
