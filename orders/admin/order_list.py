"""The order list: only the listed columns loaded, every sidebar filter, the business keys
in its URL and the search selecting through the one order filter set, pages counted by
estimate on large tables."""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList

from blueprints.models import Blueprint
from orders.admin.base import status_badge
from orders.filters import (
    DUE_CHOICES,
    KEY_COLUMNS,
    OrderListFilterSet,
    SelectionInvalid,
    is_business_key,
    orders_matching,
    split_business_key,
)
from orders.models import Order
from orders.selectors import attempts_made
from orders.waiting_for import LIST_ANNOTATIONS, facts_of_row, waiting_for

LIST_FIELDS = (
    "id",
    "order_id",
    "workflow",
    "status",
    "current_step",
    "run",
    "error",
    "failed_step",
    "failed_http_status",
    "failed_reason",
    "created_at",
    "updated_at",
    "due_at",
    "snapshot__blueprint_version",
)


class OrderChangeList(ChangeList):
    """Loads only the listed columns (payloads and saved data can be large) and the few
    values of the step state and its blueprint's pause that say what an order waits for,
    the blueprint version in the same query, and the attempts of the page's orders in one
    more."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        queryset = queryset.select_related(None).select_related("snapshot").only(*LIST_FIELDS)
        return queryset.annotate(**LIST_ANNOTATIONS)

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        made = attempts_made(self.result_list)
        for order in self.result_list:
            order.attempts_made = made.get(order.pk)
            order.waiting_for = waiting_for(facts_of_row(order))


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


class BusinessKeyFilter(admin.ListFilter):
    """The business keys of the list's URL (`?payload.customer.id=C-42`, any number of
    them), shown in the sidebar while given. Their names are not fixed, so this filter
    takes every parameter named `payload.…` or `data.…`."""

    title = "business key"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in [name for name in params if is_business_key(name)]:
            self.used_parameters[name] = params.pop(name)

    def has_output(self):
        return bool(self.used_parameters)

    def expected_parameters(self):
        return list(self.used_parameters)

    def queryset(self, request, queryset):
        if not self.used_parameters:
            return queryset
        return keys_matching(request, self.used_parameters, queryset, place="Business key")

    def choices(self, changelist):
        yield {
            "selected": False,
            "query_string": changelist.get_query_string(remove=[f"{c}." for c in KEY_COLUMNS]),
            "display": "All",
        }
        for name, values in self.used_parameters.items():
            for value in values:
                yield {
                    "selected": True,
                    "query_string": changelist.get_query_string(),
                    "display": f"{name} = {value}",
                }


# Where a business key begins in a search: `payload.` or `data.`, a path, then `=`.
SEARCH_KEY = re.compile(rf"\s+(?=(?:{'|'.join(KEY_COLUMNS)})\.[^\s=]+=)")


def search_filters(term: str) -> dict[str, list[str]]:
    """The filters a search of the order list means: `payload.<path>=<value>` and
    `data.<path>=<value>` terms (a path without spaces; a value runs to the next term), and
    any text before them as part of an order id, in any case.

    >>> search_filters(" shop-1 payload.customer.id=C-42 data.note=two words ")
    {'search': ['shop-1'], 'payload.customer.id': ['C-42'], 'data.note': ['two words']}
    """
    filters: dict[str, list[str]] = {}
    for part in SEARCH_KEY.split(term.strip()):
        try:
            name, value = split_business_key(part)
        except ValueError:
            filters["search"] = [part]
        else:
            filters.setdefault(name, []).append(value)
    return filters


def keys_matching(request, filters: dict, queryset, *, place: str):
    """The orders of `queryset` that `filters` select; when they do not parse, none, with a
    message saying why (a redirect to the whole list would hide the mistake)."""
    try:
        return orders_matching(filters, base=queryset, filterset=OrderListFilterSet)
    except SelectionInvalid as exc:
        messages.error(request, f"{place}: {exc}")
        return queryset.none()


class OrderListMixin:
    """The list side of OrderAdmin."""

    def get_changelist(self, request, **kwargs):
        return OrderChangeList

    def get_list_filter(self, request):
        """Business keys first: set in the URL, they are shown nowhere else."""
        return (BusinessKeyFilter, *super().get_list_filter(request))

    def get_search_results(self, request, queryset, search_term):
        """Part of an order id (the trigram index serves it on PostgreSQL) and business
        keys, as the API's `search` and `payload.<path>` filters select."""
        filters = search_filters(search_term)
        return keys_matching(request, filters, queryset, place="Search"), False

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return status_badge(obj.status)

    def lookup_allowed(self, lookup, value, request=None):
        """Business keys pass to BusinessKeyFilter, which takes them."""
        return (
            lookup in ("current_step", "current_step__exact")
            or is_business_key(lookup)
            or super().lookup_allowed(lookup, value, request)
        )
