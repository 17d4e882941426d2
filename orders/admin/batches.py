"""The scheduler's batches in the admin."""

from __future__ import annotations

from django.contrib import admin

from orders.admin.base import ReadOnlyAdmin
from orders.models import BatchRun


@admin.register(BatchRun)
class BatchRunAdmin(ReadOnlyAdmin):
    """The scheduler's batches, newest first: when, how long, how many orders."""

    list_display = ("started_at", "ended_at", "duration", "orders", "worker")
    list_filter = ("started_at",)
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("orders.view_order") or super().has_view_permission(
            request, obj
        )

    @admin.display(description="duration")
    def duration(self, obj):
        if obj.ended_at is None:
            return "running"
        return f"{(obj.ended_at - obj.started_at).total_seconds():.1f} s"
