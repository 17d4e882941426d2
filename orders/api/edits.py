"""The order API's edits: PATCH of one order, and the bulk edit with its preview."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from core.api import Detail, Errors
from orders.api.common import FORBIDDEN, JOB_ANSWER, NOT_FOUND, ORDER_ID, UNAUTHORIZED, actor
from orders.api.serializers import (
    BulkEditSerializer,
    BulkResultSerializer,
    EditPreviewSerializer,
    OrderDetailSerializer,
    OrderEditSerializer,
)
from orders.edits import EditPlan, edit_preview, order_edit
from orders.filters import OrderFilterSet, orders_matching
from orders.jobs import edit_arguments
from orders.models import BulkJob


class OrderEditsMixin:
    """Of OrderViewSet: its `order_data` and `bulk_job` do the answering."""

    @extend_schema(
        summary="Edit an order",
        description="Needs orders.edit_order. Replace `payload` or `data` whole, or `set` "
        "and `unset` dotted paths in them, with a `reason`. Applies to failed, cancelled, "
        "pending and waiting orders. The new payload must satisfy the pinned version's "
        "input_schema; the concurrency key is rendered again; the edit is logged with who, "
        "why and each changed path before and after (secrets masked). It does not reprocess: "
        "a failed order stays failed until it is reprocessed.",
        parameters=[ORDER_ID],
        request=OrderEditSerializer,
        responses={
            200: OrderDetailSerializer,
            400: OpenApiResponse(
                Errors,
                description="The edit is malformed, or the new "
                "payload fails the input_schema (each place named).",
            ),
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(Detail, description="The order is running or completed."),
        },
    )
    def partial_update(self, request, order_id=None):
        order = self.get_object()
        edit = OrderEditSerializer(data=request.data)
        edit.is_valid(raise_exception=True)
        given = edit.validated_data
        changes = {key: given[key] for key in ("payload", "data") if key in request.data}
        order = order_edit(
            order=order,
            reason=given["reason"],
            actor=actor(request),
            set_paths=given.get("set"),
            unset_paths=given.get("unset"),
            **changes,
        )
        return Response(self.order_data(order))

    @extend_schema(
        summary="Edit many orders",
        operation_id="orders_bulk_edit",
        description="Needs orders.edit_order (and orders.reprocess_order with "
        "`then_reprocess`). Selects as the bulk cancel does; applies one edit (`set`, "
        "`unset`, `payload`, `data`, with a `reason`) to each failed, cancelled, pending "
        "and waiting order it fits (the others, and those whose new payload the input schema "
        "refuses, are skipped), then reprocesses the edited ones if asked. Ask "
        "/api/orders/edit/preview/ first. " + JOB_ANSWER,
        request=BulkEditSerializer,
        responses={202: BulkResultSerializer, 400: Errors, 401: UNAUTHORIZED, 403: FORBIDDEN},
    )
    @action(detail=False, methods=["post"], url_path="edit", url_name="bulk-edit")
    def bulk_edit(self, request):
        body = self.edit_body(request)
        return self.bulk_job(request, body, BulkJob.Kind.EDIT, body.edit_options(request.data))

    @extend_schema(
        summary="What a bulk edit would do",
        operation_id="orders_bulk_edit_preview",
        description="Needs orders.edit_order. The bulk edit's body; writes nothing: how many "
        "of the selection the edit would change, how many it would leave and why (the first "
        "orders of each cause), and the first 50 diffs.",
        request=BulkEditSerializer,
        responses={200: EditPreviewSerializer, 400: Errors, 401: UNAUTHORIZED, 403: FORBIDDEN},
    )
    @action(detail=False, methods=["post"], url_path="edit/preview", url_name="bulk-edit-preview")
    def bulk_edit_preview(self, request):
        body = self.edit_body(request)
        selected = body.validated_data
        filters = {name: selected[name] for name in OrderFilterSet.SELECTING if name in selected}
        filters.update(selected["keys"])
        orders = orders_matching(filters, order_ids=selected.get("order_ids"))
        plan = EditPlan(actor=actor(request), **edit_arguments(body.edit_options(request.data)))
        return Response(edit_preview(orders, plan=plan))

    def edit_body(self, request) -> BulkEditSerializer:
        body = BulkEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "then_reprocess" in body.validated_data and not request.user.has_perm(
            "orders.reprocess_order"
        ):
            raise PermissionDenied("then_reprocess needs orders.reprocess_order")
        return body
