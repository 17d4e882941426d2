"""`POST /api/blueprints/{slug}/impact/`: what a blueprint change would do to recorded
orders, replayed by the dry run's engine path. Here, in the orders layer, because it runs
the engine over orders."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from blueprints.models import Blueprint
from core.api import ActionPermissions, Detail, Errors
from orders.filters import OrderFilterSet, SelectionInvalid, orders_matching
from orders.impact import MAX_ORDERS, blueprint_impact


class ImpactRequestSerializer(serializers.Serializer):
    version = serializers.JSONField(
        required=False,
        default="latest",
        help_text='"latest", a saved version\'s number, or a blueprint definition not yet '
        "saved (its slug is the blueprint's).",
    )
    orders = serializers.DictField(
        required=False,
        default=dict,
        help_text="The list's filters (status, created_after, created_before, search, "
        "business keys); the blueprint's finished orders, newest first, by default.",
    )
    limit = serializers.IntegerField(min_value=1, max_value=MAX_ORDERS, default=100)


class ImpactOrderSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["same", "different", "unanswered"])
    now = serializers.DictField(help_text="status, end_step and data as the order ended.")
    would = serializers.DictField(help_text="status, end_step and data under the change.")
    difference = serializers.ListField(child=serializers.CharField(), required=False)
    unanswered = serializers.ListField(child=serializers.CharField(), required=False)


class ImpactSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    same = serializers.IntegerField()
    different = serializers.IntegerField()
    unanswered = serializers.IntegerField()
    orders = ImpactOrderSerializer(many=True)


class BlueprintImpactView(APIView):
    permission_classes = [ActionPermissions]
    action = "impact"
    action_permissions = {"impact": ["blueprints.change_blueprint"]}

    @extend_schema(
        summary="The impact of a blueprint change on recorded orders",
        description="Needs blueprints.change_blueprint. Replays the chosen version (or an "
        "unsaved definition) over the selected finished orders' payloads, answering each "
        "call with the response the order's latest run recorded for the same step, and says "
        "per order whether it would end the same way (status, end step, saved data). Nothing "
        "is sent or saved. Recorded bodies are the step log's: masked, cut to its limit.",
        request=ImpactRequestSerializer,
        responses={
            200: ImpactSerializer,
            400: OpenApiResponse(Errors, description="A bad version, definition or filter."),
            401: OpenApiResponse(Detail, description="No or bad token."),
            403: OpenApiResponse(Detail, description="The user may not change blueprints."),
            404: OpenApiResponse(Detail, description="No such blueprint or version."),
        },
    )
    def post(self, request, slug: str):
        blueprint = Blueprint.objects.filter(slug=slug).first()
        if blueprint is None:
            return Response({"detail": "No blueprint has this slug."}, status=404)
        body = ImpactRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        given = body.validated_data
        filters = {
            name: value
            for name, value in given["orders"].items()
            if name in OrderFilterSet.SELECTING or name.startswith(("payload.", "data."))
        }
        unknown = sorted(set(given["orders"]) - set(filters))
        if unknown:
            return Response({"errors": [f"orders.{unknown[0]}: no such filter"]}, status=400)
        try:
            orders = orders_matching(filters)
        except SelectionInvalid as exc:
            return Response({"errors": [f"orders: {exc}"]}, status=400)
        result = blueprint_impact(
            blueprint=blueprint, version=given["version"], orders=orders, limit=given["limit"]
        )
        return Response(result)
