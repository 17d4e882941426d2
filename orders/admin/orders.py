"""The order admin, put together from its list, its page and its bulk actions."""

from __future__ import annotations

from django.contrib import admin

from orders.admin.base import ReadOnlyAdmin
from orders.admin.order_actions import OrderActionsMixin
from orders.admin.order_list import (
    CreatedAtFilter,
    DueFilter,
    FailedStepFilter,
    OrderListMixin,
    StatusFilter,
    WorkflowFilter,
)
from orders.admin.order_page import OrderPageMixin
from orders.models import Order
from orders.selectors import EstimatedCountPaginator


@admin.register(Order)
class OrderAdmin(OrderListMixin, OrderPageMixin, OrderActionsMixin, ReadOnlyAdmin):
    list_display = (
        "order_id",
        "workflow",
        "status_display",
        "current_step",
        "attempt",
        "created_at",
        "updated_at",
    )
    list_filter = (
        StatusFilter,
        WorkflowFilter,
        DueFilter,
        FailedStepFilter,
        ("created_at", CreatedAtFilter),
    )
    search_fields = ("order_id",)
    search_help_text = "The order id, or its beginning."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    list_max_show_all = 500
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "order_id",
        "workflow",
        "status_display",
        "current_step",
        "run",
        "attempt",
        "pinned_version",
        "created_at",
        "updated_at",
        "due_at",
        "finished_at",
        "cancel_requested",
        "input_json",
        "data_json",
        "error",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("order_id", "workflow", "pinned_version"),
                    ("status_display", "current_step", "run", "attempt"),
                    ("created_at", "updated_at", "due_at", "finished_at"),
                    "cancel_requested",
                    "error",
                )
            },
        ),
        ("Input and saved data", {"fields": (("input_json", "data_json"),)}),
    )
