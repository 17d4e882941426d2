"""The scheduler's batches in the admin, each with a link to the orders it advanced."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from orders.admin.base import ReadOnlyAdmin
from orders.models import BatchRun


@admin.register(BatchRun)
class BatchRunAdmin(ReadOnlyAdmin):
    """The scheduler's batches, newest first: when, how long, how many orders."""

    list_display = ("started_at", "ended_at", "duration", "orders", "worker", "orders_link")
    list_filter = ("started_at",)
    show_full_result_count = False
    fields = ("started_at", "ended_at", "duration", "orders", "worker", "orders_advanced")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("orders.view_order") or super().has_view_permission(
            request, obj
        )

    @admin.display(description="duration")
    def duration(self, obj):
        if obj.ended_at is None:
            return "running"
        return f"{(obj.ended_at - obj.started_at).total_seconds():.1f} s"

    @admin.display(description="")
    def orders_link(self, obj):
        return format_html('<a href="{}">its orders</a>', orders_url(obj))

    @admin.display(description="orders advanced")
    def orders_advanced(self, obj):
        return format_html(
            '<a href="{}">The orders with a log entry written while the batch ran</a>. '
            "A log entry does not record its batch, so the list also shows the orders of "
            "batches that ran at the same time on other workers.",
            orders_url(obj),
        )


def orders_url(batch: BatchRun) -> str:
    return reverse("admin:orders_order_changelist") + "?" + urlencode({"batch": batch.pk})
