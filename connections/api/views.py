from dataclasses import asdict

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from connections.models import Connection
from connections.services import (
    TEST_PERMISSION,
    connection_delete,
    connection_save,
    test_connection,
)
from connections.validation import connection_warnings
from core.api import Detail
from definitions.api import DefinitionViewSet, definition_schema

from .serializers import ConnectionSerializer, TestOutcomeSerializer

DENIED = {401: Detail, 403: Detail}
IN_USE = {
    "description": "Refused (409, naming them) while API calls use the connection.",
    "responses": {204: None, 404: Detail, 409: Detail, **DENIED},
}


@definition_schema("connection", ConnectionSerializer, in_use=IN_USE)
class ConnectionViewSet(DefinitionViewSet):
    """Connections by name; reading needs connections.view_connection, writing the
    add/change/delete ones, testing connections.test_connection."""

    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    lookup_field = "name"
    noun = "connection"
    action_permissions = {"test": [TEST_PERMISSION]}

    def save(self, definition, user):
        return connection_save(definition=definition, user=user)

    def remove(self, instance):
        connection_delete(connection=instance, user=self.request.user)

    def warnings(self, definition: dict) -> list[str]:
        return connection_warnings(definition)

    @extend_schema(
        summary="Test connection",
        description="Fetch a token with the connection (OAuth2) or sign a sample request, "
        "through the engine's outbound guard, and say how it went; credentials, tokens and "
        "signatures are masked. A failed test is still a 200, with `ok` false.",
        request=None,
        responses={
            200: OpenApiResponse(TestOutcomeSerializer, description="The outcome, masked."),
            404: Detail,
            **DENIED,
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, name=None):
        return Response(asdict(test_connection(self.get_object())))
