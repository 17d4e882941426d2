"""`POST /api/messages/`: a partner's (or the frontend's) message resumes the orders waiting
for its name and key (contract section 11)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ActionPermissions, Detail, Errors
from orders.messages import (
    KEY_MAX_LENGTH,
    NAME_MAX_LENGTH,
    SENDER_ID_MAX_LENGTH,
    Received,
    message_receive,
)

POST_MESSAGE = "orders.post_message"


class MessageSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, help_text="e.g. payment.captured")
    key = serializers.CharField(
        max_length=KEY_MAX_LENGTH, help_text="The correlation key, e.g. the payment's id."
    )
    data = serializers.DictField(
        required=False, default=dict, help_text="Seen by the step's save as message.data."
    )
    id = serializers.CharField(
        max_length=SENDER_ID_MAX_LENGTH,
        required=False,
        default="",
        allow_blank=True,
        help_text="The sender's own id of the message: the same id again changes nothing.",
    )


class MatchedSerializer(serializers.Serializer):
    matched = serializers.IntegerField(
        help_text="How many waiting orders the message resumed (0: kept for the orders "
        "that start waiting for it within STATE_MANAGER_MESSAGE_TTL_SECONDS)."
    )


def received_response(received: Received) -> Response:
    """202 for a new message; 200, the first answer again, for a sender's id seen before."""
    code = status.HTTP_202_ACCEPTED if received.created else status.HTTP_200_OK
    return Response({"matched": received.matched}, status=code)


class MessageView(APIView):
    """Post a message; needs orders.post_message (the Integrations role)."""

    permission_classes = [ActionPermissions]
    action = "post"
    action_permissions = {"post": [POST_MESSAGE]}
    cached_permission_actions = ["post"]

    @extend_schema(
        summary="Post a message",
        operation_id="messages_create",
        description="Every order waiting for a message of this name and key resumes with it "
        "within a second; with none waiting, the message is kept for the orders that start "
        "waiting for it within STATE_MANAGER_MESSAGE_TTL_SECONDS, and each takes it once. "
        "The same `id` again is a 200 that changes nothing.",
        request=MessageSerializer,
        responses={
            202: MatchedSerializer,
            200: OpenApiResponse(MatchedSerializer, description="This id came before."),
            400: Errors,
            401: Detail,
            403: Detail,
        },
    )
    def post(self, request):
        body = MessageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        received = message_receive(
            name=values["name"], key=values["key"], data=values["data"], sender_id=values["id"]
        )
        return received_response(received)
