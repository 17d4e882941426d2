"""What the order pages share: read-only admins, and the status badge."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from orders.models import Order


class ReadOnlyAdmin(admin.ModelAdmin):
    """Pages that show what the engine wrote: nobody adds, edits or deletes there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


STATUS_COLOURS = {
    Order.Status.PENDING: "#6b7280",
    Order.Status.RUNNING: "#1d4ed8",
    Order.Status.WAITING: "#b45309",
    Order.Status.COMPLETED: "#15803d",
    Order.Status.FAILED: "#b91c1c",
    Order.Status.CANCELLED: "#4b5563",
}


def status_badge(status: str) -> str:
    return format_html(
        '<span class="sm-badge sm-status-{}" style="background:{}">{}</span>',
        status,
        STATUS_COLOURS.get(status, "#6b7280"),
        status,
    )
