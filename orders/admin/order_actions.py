"""The bulk reprocess and cancel actions of support staff: a confirmation page with the
counts, then the order services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse

from orders.models import Order
from orders.services import orders_cancel, orders_reprocess, reprocessable_statuses

VERSIONS = (("pinned", "the version each order was created with"), ("latest", "the latest version"))


class OrderActionsMixin:
    """The bulk actions of OrderAdmin."""

    actions = ["reprocess_from_failed", "reprocess_from_start", "cancel_orders"]

    def has_reprocess_permission(self, request):
        return request.user.has_perm("orders.reprocess_order")

    @admin.action(description="Reprocess from the failed step", permissions=["reprocess"])
    def reprocess_from_failed(self, request, queryset):
        return self.reprocess(request, queryset, start_from="failed")

    @admin.action(description="Reprocess from the start", permissions=["reprocess"])
    def reprocess_from_start(self, request, queryset):
        return self.reprocess(request, queryset, start_from="start")

    @admin.action(description="Cancel", permissions=["reprocess"])
    def cancel_orders(self, request, queryset):
        queryset = queryset.defer(None)
        if request.POST.get("confirm") == "yes":
            result = orders_cancel(orders=queryset, actor=request.user.get_username())
            self.message_user(
                request,
                f"Cancelled {result.count} order(s) (running ones stop when their current step "
                f"ends); {result.skipped} skipped (already completed or cancelled).",
                messages.SUCCESS,
            )
            return None
        counts = self.status_counts(queryset)
        finished = counts[Order.Status.COMPLETED] + counts[Order.Status.CANCELLED]
        running = counts[Order.Status.RUNNING]
        return self.confirmation(
            request,
            title="Cancel orders",
            action="cancel_orders",
            total=sum(counts.values()),
            touched=sum(counts.values()) - finished - running,
            later=running,
            untouched=finished,
            untouched_reason="already completed or cancelled",
            choose_version=False,
        )

    def reprocess(self, request, queryset, *, start_from: str):
        queryset = queryset.defer(None)
        if request.POST.get("confirm") == "yes":
            version = request.POST.get("version", "pinned")
            if version not in dict(VERSIONS):
                version = "pinned"
            include_completed = start_from == "start" and (
                request.POST.get("include_completed") == "yes"
            )
            result = orders_reprocess(
                orders=queryset,
                start_from=start_from,
                version=version,
                include_completed=include_completed,
                actor=request.user.get_username(),
            )
            where = "the failed step" if start_from == "failed" else "the start"
            self.message_user(
                request,
                f"Reprocessing {result.count} order(s) from {where} on the {version} version; "
                f"{result.skipped} skipped (not failed or cancelled"
                + (", completed ones included" if include_completed else "")
                + ", or the latest version lacks their step).",
                messages.SUCCESS,
            )
            return None
        counts = self.status_counts(queryset)
        reprocessable = reprocessable_statuses(start_from=start_from, include_completed=False)
        touched = sum(counts[status] for status in reprocessable)
        completed = counts[Order.Status.COMPLETED] if start_from == "start" else 0
        return self.confirmation(
            request,
            title="Reprocess orders from "
            + ("the failed step" if start_from == "failed" else "the start"),
            action=f"reprocess_from_{start_from}",
            total=sum(counts.values()),
            touched=touched,
            later=0,
            untouched=sum(counts.values()) - touched - completed,
            untouched_reason="pending, running or waiting: cancel them first"
            + ("" if start_from == "start" else "; completed: only from the start"),
            completed=completed,
            choose_version=True,
        )

    @staticmethod
    def status_counts(queryset) -> dict[str, int]:
        """One grouped query, however many orders the selection holds."""
        counts = dict.fromkeys(Order.Status.values, 0)
        rows = queryset.order_by().values("status").annotate(count=Count("pk"))
        for row in rows:
            counts[row["status"]] = row["count"]
        return counts

    def confirmation(self, request, *, action: str, **numbers) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "action": action,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "versions": VERSIONS,
            "changelist_url": reverse("admin:orders_order_changelist"),
            **numbers,
        }
        return TemplateResponse(request, "admin/orders/order/confirm_action.html", context)
