from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import tracing
from core.api import ActionPermissions, Detail, Errors, Pagination
from orders import counters, services
from orders.api.common import (
    FORBIDDEN,
    JOB_ANSWER,
    NOT_FOUND,
    ORDER_ID,
    UNAUTHORIZED,
    actor,
)
from orders.api.edits import OrderEditsMixin
from orders.api.throttling import CountingScopedRateThrottle
from orders.callbacks import callback_receive
from orders.filters import OrderFilterSet, orders_matching
from orders.jobs import job_prepare, job_start
from orders.models import BulkJob, Order, OrderEvent, StepLog
from orders.selectors import EstimatedCountPaginator

from .serializers import (
    BulkCancelSerializer,
    BulkJobSerializer,
    BulkReprocessSerializer,
    BulkResultSerializer,
    CallbackAcceptedSerializer,
    CallbackSerializer,
    NewOrderSerializer,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderEventSerializer,
    OrderSerializer,
    ReprocessSerializer,
)

# One instance for every new order: a ModelSerializer builds its fields anew per instance,
# which costs more than showing the order; to_representation keeps no state.
NEW_ORDER = NewOrderSerializer()


class OrderFilterBackend(DjangoFilterBackend):
    """The list's filters select as every other door does, through `orders_matching` (the
    view's `filterset_class` still describes them in the OpenAPI schema)."""

    def filter_queryset(self, request, queryset, view):
        return orders_matching(request.query_params, base=queryset)


class OrderPagination(Pagination):
    """As the admin's list: filtered lists are counted exactly, the whole list of a large
    table is PostgreSQL's estimate (an exact count of a million orders grows with them)."""

    django_paginator_class = EstimatedCountPaginator


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        description="Needs orders.view_order.\n\n"
        "Besides the fixed filters, **business keys**: any number of parameters named "
        "`payload.<path>` or `data.<path>`, a dotted path of object keys into the order's "
        "payload or its saved data (lists are not indexed), e.g. "
        "`?payload.customer.id=C-42&data.tracking=TRK-1`. Each matches the value at that "
        "path exactly, as text: `2` matches the JSON number 2 (and 2.0) and the string "
        '"2"; `true`, `false` and `null` match those JSON values and the same strings; '
        "a missing key matches nothing. Different keys must all match; a key repeated "
        "matches any of its values. Indexed on PostgreSQL. A bad path (an empty key, a "
        "list position such as `items.0`, a quote) or a value over 1000 characters is a "
        "400 naming the parameter.",
        responses={200: OrderSerializer, 401: UNAUTHORIZED, 403: FORBIDDEN},
    ),
    retrieve=extend_schema(
        summary="An order with its whole log",
        description="Needs orders.view_order. The log holds every attempt, oldest first "
        "(secrets masked, bodies truncated), and the reprocess, cancel and callback "
        "entries with who asked.",
        parameters=[ORDER_ID],
        responses={200: OrderDetailSerializer, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
)
class OrderViewSet(
    OrderEditsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    lookup_field = "order_id"
    lookup_value_regex = "[^/]+"
    filter_backends = [OrderFilterBackend]
    filterset_class = OrderFilterSet
    pagination_class = OrderPagination
    permission_classes = [ActionPermissions]
    cached_permission_actions = ["create"]  # the webhook's answer is kept a few seconds
    throttle_scope = "webhook"
    action_permissions = {
        "create": ["orders.add_order"],
        "list": ["orders.view_order"],
        "retrieve": ["orders.view_order"],
        "reprocess": ["orders.reprocess_order"],
        "bulk_reprocess": ["orders.reprocess_order"],
        "bulk_cancel": ["orders.reprocess_order"],
        "job": ["orders.reprocess_order"],
        "cancel": ["orders.reprocess_order"],
        "events": ["orders.view_order"],
        "partial_update": ["orders.edit_order"],
        "bulk_edit": ["orders.edit_order"],
        "bulk_edit_preview": ["orders.edit_order"],
    }

    def get_queryset(self):
        if self.action == "list":
            return Order.objects.select_related("snapshot").defer(
                "snapshot__definition", "payload", "data", "step_state", "resume_point"
            )
        if self.action == "retrieve":
            return detail_queryset()
        return Order.objects.all()

    def get_serializer_class(self):
        return OrderSerializer if self.action == "list" else OrderDetailSerializer

    def finalize_response(self, request, response, *args, **kwargs):
        if self.action == "create":  # every answer of the webhook, refusals included
            counters.add("webhook_responses", status=str(response.status_code))
        return super().finalize_response(request, response, *args, **kwargs)

    def get_throttles(self):
        """Only the webhook is throttled, per token."""
        return [CountingScopedRateThrottle()] if self.action == "create" else []

    @extend_schema(
        summary="The webhook: post an order",
        description="Needs orders.add_order. The same request again returns the existing "
        "order with 200; the same order_id with another workflow or payload is a 409. "
        "Throttled per token (scope `webhook`); a body over STATE_MANAGER_MAX_REQUEST_BYTES "
        "gets a 413.",
        request=OrderCreateSerializer,
        responses={
            201: OrderDetailSerializer,
            200: OpenApiResponse(OrderDetailSerializer, description="The same order again."),
            400: OpenApiResponse(
                Errors,
                description="Malformed JSON, unknown workflow, a payload that "
                "fails the workflow's input_schema, or one its concurrency_key cannot be "
                "rendered over.",
            ),
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            409: OpenApiResponse(Detail, description="The order_id is taken by another order."),
            413: OpenApiResponse(Errors, description="The body is too large."),
            429: OpenApiResponse(Detail, description="Too many requests for this token."),
        },
    )
    def create(self, request):
        body = OrderCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incoming = request.headers.get("traceparent", "")
        posted = {"order.id": body.validated_data["order_id"]}
        posted["order.workflow"] = body.validated_data["workflow"]
        with tracing.span("webhook", traceparent=incoming, attributes=posted) as span:
            trace_parent = tracing.kept_traceparent(incoming, span)
            order, created = services.order_create(**body.validated_data, trace_parent=trace_parent)
            if span is not None:
                span.set_attribute("order.status", order.status)
        if created:
            return Response(NEW_ORDER.to_representation(order), status=status.HTTP_201_CREATED)
        return Response(self.order_data(order), status=status.HTTP_200_OK)

    @extend_schema(
        summary="Reprocess an order",
        operation_id="orders_reprocess",
        description="Needs orders.reprocess_order. Begins a new run at once: the order is "
        "pending and due, and the next batch picks it up. Applies to failed and cancelled "
        "orders, and from the start to a completed one (naming it is the explicit word).",
        parameters=[ORDER_ID],
        request=ReprocessSerializer,
        responses={
            202: OrderDetailSerializer,
            400: Errors,
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(
                Detail,
                description="The order is running, pending or waiting (cancel it first), "
                "or completed and the reprocess is from the failed step.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def reprocess(self, request, order_id=None):
        order = self.get_object()
        options = ReprocessSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        order = services.order_reprocess(
            order=order,
            start_from=options.validated_data["from"],
            version=options.validated_data["version"],
            actor=actor(request),
        )
        return Response(self.order_data(order), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Reprocess many orders",
        operation_id="orders_bulk_reprocess",
        description="Needs orders.reprocess_order. Select by `order_ids` or by the list's "
        'filters, business keys included as keys of the body (`{"payload.customer.id": '
        '"C-42", "from": "failed"}`; a value may be text, a number, true, false or null, '
        "or a list of them). Failed and cancelled orders are reprocessed; completed ones "
        "only from the start with `include_completed`; pending, running and waiting ones "
        "are skipped. " + JOB_ANSWER,
        request=BulkReprocessSerializer,
        responses={
            202: BulkResultSerializer,
            400: Errors,
            401: UNAUTHORIZED,
            403: FORBIDDEN,
        },
    )
    @action(detail=False, methods=["post"], url_path="reprocess", url_name="bulk-reprocess")
    def bulk_reprocess(self, request):
        body = BulkReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = body.validated_data
        return self.bulk_job(
            request,
            body,
            BulkJob.Kind.REPROCESS,
            {name: options[name] for name in ("from", "version", "include_completed")},
        )

    @extend_schema(
        summary="Cancel many orders",
        operation_id="orders_bulk_cancel",
        description="Needs orders.reprocess_order. Selects as the bulk reprocess does "
        "(`order_ids`, or the list's filters and business keys). Pending, waiting and failed "
        "orders are cancelled at once, running ones stop before their next step; completed "
        "and cancelled ones are skipped. " + JOB_ANSWER,
        request=BulkCancelSerializer,
        responses={202: BulkResultSerializer, 400: Errors, 401: UNAUTHORIZED, 403: FORBIDDEN},
    )
    @action(detail=False, methods=["post"], url_path="cancel", url_name="bulk-cancel")
    def bulk_cancel(self, request):
        body = BulkCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self.bulk_job(request, body, BulkJob.Kind.CANCEL, {})

    def bulk_job(self, request, body, kind: str, options: dict) -> Response:
        """Freeze the body's selection into a job and start it: 202 with its counts (the
        final ones when it ran at once, else the orders selected) and the job to follow."""
        selected = body.validated_data
        filters = {name: selected[name] for name in OrderFilterSet.SELECTING if name in selected}
        filters.update(selected["keys"])
        order_ids = selected.get("order_ids")
        job = job_prepare(
            kind=kind,
            orders=orders_matching(filters, order_ids=order_ids),
            selection={"order_ids": order_ids} if order_ids else filters,
            options=options,
            actor=actor(request),
        )
        job = job_start(job)
        ran = job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED)
        answer = {
            "count": job.done if ran else job.total,
            "skipped": job.skipped if ran else 0,
            "job": job,
        }
        context = self.get_serializer_context()
        return Response(
            BulkResultSerializer(answer, context=context).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        summary="A bulk reprocess or cancel job",
        operation_id="orders_bulk_job",
        description="Needs orders.reprocess_order. The state of a job that a bulk reprocess "
        "or cancel started: `queued` until a worker takes it, `running` with `done` and "
        "`skipped` growing as it goes, then `done` (or `failed` with its `error`).",
        parameters=[OpenApiParameter("job_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={
            200: BulkJobSerializer,
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            404: OpenApiResponse(Detail, description="No such job."),
        },
    )
    @action(detail=False, methods=["get"], url_path=r"jobs/(?P<job_id>[0-9]+)", url_name="job")
    def job(self, request, job_id=None):
        job = get_object_or_404(BulkJob, pk=job_id)
        return Response(BulkJobSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Cancel an order",
        description="Needs orders.reprocess_order. Pending, waiting and failed orders are "
        "cancelled at once; a running order stops before its next step.",
        parameters=[ORDER_ID],
        request=None,
        responses={
            202: OrderDetailSerializer,
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(Detail, description="The order is completed or cancelled."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, order_id=None):
        order = self.get_object()
        order = services.order_cancel(order=order, actor=actor(request))
        return Response(self.order_data(order), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="An order's status notifications",
        description="Needs orders.view_order. Every status change of an order whose "
        "blueprint names a `notify_url`, oldest first, as posted there, with where its "
        "delivery stands: a frontend catches up here on what it missed.",
        parameters=[ORDER_ID],
        request=None,
        responses={
            200: OrderEventSerializer(many=True),
            401: UNAUTHORIZED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def events(self, request, order_id=None):
        order = self.get_object()
        events = OrderEvent.objects.filter(order=order).select_related("order").order_by("id")
        return Response(OrderEventSerializer(events, many=True).data)

    def order_data(self, order: Order) -> dict:
        """The order as GET shows it, read again with its log."""
        order = get_object_or_404(detail_queryset(), pk=order.pk)
        return OrderDetailSerializer(order, context=self.get_serializer_context()).data


def detail_queryset():
    return (
        Order.objects.select_related("snapshot")
        .defer("snapshot__definition")
        .prefetch_related(Prefetch("log", queryset=StepLog.objects.order_by("id")))
    )


class CallbackView(APIView):
    """Resume an order waiting at a `wait_for_callback` step.

    No API token: the one-time token in the URL is the credential.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Post a callback",
        description="Needs no API token: the one-time callback token in the URL is the "
        "credential (the order's step received it as `callback.url` / `callback.token`). "
        "A success resumes the waiting order; a failure fails its step.",
        request=CallbackSerializer,
        responses={
            202: CallbackAcceptedSerializer,
            400: Errors,
            404: OpenApiResponse(Detail, description="No callback has this token."),
            409: OpenApiResponse(Detail, description="The token was used already or expired."),
        },
        auth=[],
    )
    def post(self, request, token: str):
        body = CallbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = callback_receive(token=token, **body.validated_data)
        return Response(
            {"order_id": order.order_id, "status": order.status}, status=status.HTTP_202_ACCEPTED
        )
