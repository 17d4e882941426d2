"""The order list: only the listed columns loaded, every sidebar filter and the search
selecting through the one order filter set, pages counted by estimate on large tables."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList

from blueprints.models import Blueprint
from orders.admin.base import status_badge
from orders.filters import DUE_CHOICES, OrderListFilterSet, SelectionInvalid, orders_matching
from orders.models import Order

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


class OrderListMixin:
    """The list side of OrderAdmin."""

    def get_changelist(self, request, **kwargs):
        return OrderChangeList

    def get_search_results(self, request, queryset, search_term):
        return list_matching({"order_id": search_term}, queryset), False

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status)

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in ("current_step", "current_step__exact") or super().lookup_allowed(
            lookup, value, request
        )
