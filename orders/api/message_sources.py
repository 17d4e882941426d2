"""`/api/message-sources/` (CRUD by name) and `POST /api/messages/<source>/`, where a
partner posts its own signed webhooks (contract section 11)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from core.api import Detail, Errors
from definitions.api import DefinitionViewSet, definition_schema
from orders.api.messages import MatchedSerializer, received_response
from orders.message_sources import (
    SignatureRefused,
    source_receive,
    source_save,
    source_warnings,
)
from orders.models import MessageSource


class SignatureSerializer(serializers.Serializer):
    header = serializers.CharField(help_text="The header that carries the signature.")
    scheme = serializers.ChoiceField(
        choices=MessageSource.Scheme.choices,
        help_text='"stripe": t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">, within the '
        "tolerance; hmac_hex / hmac_base64: the HMAC-SHA256 of the body.",
    )


class MessageSourceSerializer(serializers.Serializer):
    """A message source in the contract's JSON; writes are validated as a whole."""

    name = serializers.RegexField(r"^[A-Za-z0-9._-]+$", max_length=100)
    secret = serializers.CharField(help_text="Exactly one {{ secrets.NAME }} expression.")
    signature = SignatureSerializer()
    message_name = serializers.CharField(help_text="An expression over body and headers.")
    key = serializers.CharField(help_text="The correlation key: an expression over body.")
    id = serializers.CharField(
        required=False, help_text="The sender's message id (deduplicates): an expression."
    )
    tolerance_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=86400, default=300
    )

    def to_representation(self, instance):
        return instance.as_definition()


@definition_schema("message source", MessageSourceSerializer)
class MessageSourceViewSet(DefinitionViewSet):
    """Message sources by name; reading needs orders.view_messagesource, writing the
    add/change/delete ones (the Blueprint editors)."""

    queryset = MessageSource.objects.all()
    serializer_class = MessageSourceSerializer
    lookup_field = "name"
    noun = "message source"

    def save(self, definition, user):
        return source_save(definition=definition, user=user)

    def remove(self, instance):
        instance.delete()

    def warnings(self, definition: dict) -> list[str]:
        return source_warnings(definition)


class SourceMessageView(APIView):
    """A partner's own webhook, verified by the source's signature over the raw body."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Post a partner's webhook to a message source",
        operation_id="messages_source_create",
        description="Needs no API token: accepted only when the signature verifies over the "
        "raw body (else 401, nothing stored); the message's name, key and id are taken "
        "from the body by the source's expressions.",
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            202: MatchedSerializer,
            200: OpenApiResponse(MatchedSerializer, description="This id came before."),
            400: Errors,
            401: Detail,
            404: Detail,
        },
        auth=[],
    )
    def post(self, request, source: str):
        verdict = source_receive(name=source, headers=request.headers, body=request.body)
        if not verdict.accepted:
            raise SignatureRefused(verdict.reason)
        return received_response(verdict.received)
