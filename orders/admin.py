"""Orders in the admin: a list that stays fast on millions of rows, a read-only order page
with its flow and step log, and the bulk reprocess and cancel actions of support staff."""

from __future__ import annotations

from itertools import groupby

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from blueprints.diagram import blueprint_svg
from blueprints.models import Blueprint
from definitions.admin import json_block, json_text
from orders.filters import DUE_CHOICES, OrderListFilterSet, SelectionInvalid, orders_matching
from orders.models import BatchRun, Order
from orders.selectors import EstimatedCountPaginator
from orders.services import orders_cancel, orders_reprocess, reprocessable_statuses

LIST_FIELDS = (
    "id",
    "order_id",
    "workflow",
    "status",
    "current_step",
    "attempt",
    "created_at",
    "updated_at",
)
# The most log entries the order page shows; the API has them all.
TIMELINE_LIMIT = 500
VERSIONS = (("pinned", "the version each order was created with"), ("latest", "the latest version"))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Pages that show what the engine wrote: nobody adds, edits or deletes there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderChangeList(ChangeList):
    """Loads only the listed columns: payloads and saved data can be large."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.select_related(None).only(*LIST_FIELDS)


def list_matching(filters: dict, queryset):
    """The orders of the admin list's `queryset` that `filters` select, as the API and the
    command select; values that do not parse are a bad lookup, as Django shows one."""
    try:
        return orders_matching(filters, base=queryset, filterset=OrderListFilterSet)
    except SelectionInvalid as exc:
        raise IncorrectLookupParameters(str(exc)) from exc


class OrderListFilter(admin.SimpleListFilter):
    """A filter of the list's sidebar that selects with the filter `filter_name` of the
    order filter set, under the URL parameter the dashboard's links use."""

    filter_name = ""

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return list_matching({self.filter_name: self.value()}, queryset)


class StatusFilter(OrderListFilter):
    title = "status"
    parameter_name = "status__exact"
    filter_name = "status"

    def lookups(self, request, model_admin):
        return Order.Status.choices


class WorkflowFilter(OrderListFilter):
    """Workflows from the blueprints table, not a DISTINCT over every order."""

    title = "workflow"
    parameter_name = filter_name = "workflow"

    def lookups(self, request, model_admin):
        return list(Blueprint.objects.order_by("slug").values_list("slug", "name"))


class DueFilter(OrderListFilter):
    title = "due"
    parameter_name = filter_name = "due"

    def lookups(self, request, model_admin):
        return DUE_CHOICES


class FailedStepFilter(OrderListFilter):
    """Orders that failed at a step in the last 24 hours (the dashboard's links)."""

    title = "failed in the last 24 hours at step"
    parameter_name = filter_name = "failed_step"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, value)] if value else []


class CreatedAtFilter(admin.DateFieldListFilter):
    """The date links, selecting with the filter set's `created_after` and `created_before`
    (a time with an impossible UTC offset is a bad lookup, not a database error)."""

    FILTERS = {"created_at__gte": "created_after", "created_at__lt": "created_before"}

    def queryset(self, request, queryset):
        filters = {
            self.FILTERS[name]: values
            for name, values in self.used_parameters.items()
            if name in self.FILTERS
        }
        return list_matching(filters, queryset)


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


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
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
    actions = ["reprocess_from_failed", "reprocess_from_start", "cancel_orders"]
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

    # The list.

    def get_changelist(self, request, **kwargs):
        return OrderChangeList

    def get_search_results(self, request, queryset, search_term):
        return list_matching({"order_id": search_term}, queryset), False

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status)

    def has_reprocess_permission(self, request):
        return request.user.has_perm("orders.reprocess_order")

    # The order page.

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

    # The filters the dashboard links to.

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in ("current_step", "current_step__exact") or super().lookup_allowed(
            lookup, value, request
        )

    # Bulk actions: a confirmation page with the counts, then the services.

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
