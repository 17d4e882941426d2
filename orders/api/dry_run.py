"""`POST /api/blueprints/{slug}/dry-run/`: a blueprint walked for a sample payload and
sample responses, sending nothing. Here, in the orders layer, because it runs the engine."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from blueprints.models import Blueprint
from core.api import ActionPermissions, Detail, Errors
from orders.engine.dry_run import blueprint_dry_run

from .serializers import LogRequestSerializer, LogResponseSerializer


class DryRunRequestSerializer(serializers.Serializer):
    payload = serializers.JSONField(help_text="A sample order payload, checked by input_schema.")
    responses = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text='Per step id (a parallel branch: "<step>.<branch>"; one item of a map: '
        '"<step>[<index>]", else the map\'s id answers every item), what its API call '
        'answers: {"status": 200, "body": {}, "headers": {}, "callback": {"outcome": '
        '"success"|"failure"|"timeout", "data": {}}}, every key optional, or a list of '
        "them, one per attempt (the last one answers the attempts after it). A step "
        "without one gets 200 with {}.",
    )


class DryAttemptSerializer(serializers.Serializer):
    step = serializers.CharField(help_text='The step id, "<step>.<branch>" or "<step>[<index>]".')
    attempt = serializers.IntegerField()
    request = LogRequestSerializer(allow_null=True, help_text="As rendered, secrets masked.")
    response = LogResponseSerializer(allow_null=True, help_text="The sample that answered.")
    outcome = serializers.CharField(help_text="succeeded, retrying, waiting or failed.")
    error = serializers.CharField(allow_blank=True)
    wait_seconds = serializers.FloatField(
        allow_null=True, help_text="The wait before the next attempt (with jitter)."
    )
    waits = serializers.CharField(
        allow_blank=True,
        help_text='"in the turn" (slept) or "order waiting" (longer than '
        "STATE_MANAGER_MAX_INLINE_WAIT_SECONDS: the order would wait until due).",
    )


class DryVisitSerializer(serializers.Serializer):
    step = serializers.CharField()
    kind = serializers.CharField(help_text="call, choice, parallel or end.")
    attempts = DryAttemptSerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField())
    outcome = serializers.CharField(help_text="succeeded, failed or ended.")
    error = serializers.CharField(allow_blank=True)
    retries = serializers.IntegerField()
    saved = serializers.DictField(help_text="What the step saved (secrets masked).")
    data = serializers.DictField(help_text="The order's data after the step.")
    next = serializers.CharField(allow_null=True, help_text="The step that follows, if any.")


class DryEndSerializer(serializers.Serializer):
    status = serializers.CharField(
        help_text="How the order would end: completed or failed; stopped when the dry run "
        "gave up (too many attempts)."
    )
    step = serializers.CharField(help_text="The step it would end at.")
    error = serializers.CharField(allow_blank=True)
    data = serializers.DictField()


class DryRunSerializer(serializers.Serializer):
    workflow = serializers.CharField()
    steps = DryVisitSerializer(many=True, help_text="Every step visited, in order.")
    end = DryEndSerializer()


class BlueprintDryRunView(APIView):
    """Walk a blueprint (and its API calls as they are now) for sample data."""

    permission_classes = [ActionPermissions]
    action = "dry_run"  # what ActionPermissions looks up, as on a viewset
    action_permissions = {"dry_run": ["blueprints.view_blueprint"]}

    @extend_schema(
        summary="Dry-run a blueprint",
        description="Needs blueprints.view_blueprint. Walks the blueprint and the API calls "
        "it uses, as they are now, for a sample payload, step by step as the engine would: "
        "each call step's request is rendered (secrets masked) and answered by its sample "
        "response. Nothing is sent and nothing is saved. Where an order would wait (a "
        "retry due later, a callback) the dry run notes it and goes on.",
        request=DryRunRequestSerializer,
        responses={
            200: DryRunSerializer,
            400: OpenApiResponse(
                Errors, description="A payload that fails input_schema, or a bad sample."
            ),
            401: OpenApiResponse(Detail, description="No or bad token."),
            403: OpenApiResponse(Detail, description="The user may not view blueprints."),
            404: OpenApiResponse(Detail, description="No blueprint has this slug."),
        },
        examples=[
            OpenApiExample(
                "A declined charge",
                request_only=True,
                value={
                    "payload": {"sku": "TEE", "qty": 2, "email": "ann@example.com"},
                    "responses": {
                        "validate": {"body": {"total": 50}},
                        "charge": {"status": 402, "body": {"error": "card declined"}},
                    },
                },
            )
        ],
    )
    def post(self, request, slug: str):
        blueprint = Blueprint.objects.filter(slug=slug).first()
        if blueprint is None:
            return Response({"detail": "No blueprint has this slug."}, status=404)
        body = DryRunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = blueprint_dry_run(blueprint=blueprint, **body.validated_data)
        return Response(result.as_json())
