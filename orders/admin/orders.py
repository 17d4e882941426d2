"""The order admin, put together from its list, its page and its bulk actions."""

from __future__ import annotations

from django.contrib import admin

from core.admin import EDITOR_CSS, EDITOR_JS
from orders.admin.base import ReadOnlyAdmin
from orders.admin.order_actions import OrderActionsMixin
from orders.admin.order_bulk_edit import OrderBulkEditMixin
from orders.admin.order_edit import OrderEditMixin
from orders.admin.order_failures import (
    BatchFilter,
    BlueprintVersionFilter,
    ErrorFilter,
    FailedStepFilter,
    FailureColumnsMixin,
    FinishedWithinFilter,
    HeldByFilter,
    HttpStatusFilter,
)
from orders.admin.order_list import (
    CreatedAtFilter,
    DueFilter,
    OrderListMixin,
    StatusFilter,
    WorkflowFilter,
)
from orders.admin.order_page import OrderPageMixin
from orders.models import Order
from orders.selectors import EstimatedCountPaginator


@admin.register(Order)
class OrderAdmin(
    OrderListMixin,
    FailureColumnsMixin,
    OrderEditMixin,
    OrderBulkEditMixin,
    OrderPageMixin,
    OrderActionsMixin,
    ReadOnlyAdmin,
):
    list_display = (
        "order_link",
        "workflow_name",
        "status_display",
        "current_step_name",
        "waiting_for_display",
        "failed_step_display",
        "http_status",
        "error_line",
        "attempts",
        "blueprint_version",
        "created",
        "updated",
    )
    list_filter = (
        StatusFilter,
        WorkflowFilter,
        FailedStepFilter,
        ErrorFilter,
        HttpStatusFilter,
        BlueprintVersionFilter,
        DueFilter,
        ("created_at", CreatedAtFilter),
        BatchFilter,
        FinishedWithinFilter,
        HeldByFilter,
    )
    search_fields = ("order_id",)
    search_help_text = (
        "Part of an order id, and/or business keys: payload.<path>=<value>, "
        "data.<path>=<value> (e.g. payload.customer.id=C-42)."
    )
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    class Media:
        css = {"all": EDITOR_CSS}
        js = (*EDITOR_JS, "statemanager/order-edit.js")

    list_per_page = 50
    list_max_show_all = 500
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "order_id",
        "workflow",
        "status_display",
        "current_step",
        "run",
        "attempts_shown",
        "pinned_version",
        "created_at",
        "updated_at",
        "due_at",
        "finished_at",
        "cancel_request",
        "input_json",
        "data_json",
        "failure",
        "error",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("order_id", "workflow", "pinned_version"),
                    ("status_display", "current_step", "run", "attempts_shown"),
                    ("created_at", "updated_at", "due_at", "finished_at"),
                    "cancel_request",
                    "failure",
                    "error",
                )
            },
        ),
        ("Input and saved data", {"fields": (("input_json", "data_json"),)}),
    )

    def changelist_view(self, request, extra_context=None):
        """Without the navigation sidebar: the list's columns need the width."""
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def get_list_display(self, request):
        """Orders listed by a finished status wait for nothing: no "waiting for" column,
        which leaves its width to the error."""
        columns = super().get_list_display(request)
        if request.GET.get("status__exact") in Order.FINISHED:
            columns = tuple(column for column in columns if column != "waiting_for_display")
        return columns

    def get_fieldsets(self, request, obj=None):
        """The cancel request only while it is pending (on a finished order it says
        nothing the status does not), the failed attempt only once one failed."""
        fieldsets = super().get_fieldsets(request, obj)
        hidden = set()
        if obj is None or not obj.cancel_requested or obj.status in Order.FINISHED:
            hidden.add("cancel_request")
        if obj is None or not obj.failed_reason:
            hidden.add("failure")  # nothing failed in this run
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]
