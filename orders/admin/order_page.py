"""The order page: input and saved data, the flow diagram with the path taken, and the
step log as a timeline grouped by run."""

from __future__ import annotations

from itertools import groupby

from django.contrib import admin
from django.utils.safestring import mark_safe

from blueprints.diagram import blueprint_svg
from definitions.admin import json_block, json_text
from orders.admin.base import status_badge
from orders.models import Order

# The most log entries the order page shows; the API has them all.
TIMELINE_LIMIT = 500


class OrderPageMixin:
    """The order page side of OrderAdmin."""

    @admin.display(description="input")
    def input_json(self, obj):
        return json_block(obj.payload)

    @admin.display(description="saved data")
    def data_json(self, obj):
        return json_block(obj.data)

    @admin.display(description="blueprint version")
    def pinned_version(self, obj):
        snapshot = obj.snapshot
        return f"v{snapshot.blueprint_version} ({snapshot.digest[:8]})"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("snapshot")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if order is not None:
            context.update(self.order_page_context(request, order))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def order_page_context(self, request, order: Order) -> dict:
        entries = list(order.log.order_by("-id")[:TIMELINE_LIMIT])
        entries.reverse()
        for entry in entries:
            entry.request_json = json_text(entry.request) if entry.request else ""
            entry.response_json = json_text(entry.response) if entry.response else ""
        runs = [
            {"run": run, "entries": list(group), "current": run == order.run}
            for run, group in groupby(entries, key=lambda entry: entry.run)
        ]
        taken = {entry.step for entry in entries if entry.run == order.run and entry.step}
        current = None if order.status == Order.Status.COMPLETED else order.current_step
        blueprint = order.snapshot.definition.get("blueprint", {})
        return {
            "timeline_runs": runs,
            "timeline_truncated": len(entries) == TIMELINE_LIMIT,
            "diagram": mark_safe(blueprint_svg(blueprint, taken=taken, current=current)),
            "may_reprocess": self.has_reprocess_permission(request),
            "status_badge": status_badge(order.status),
        }
