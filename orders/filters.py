"""The orders a filter selects, one definition for every door: the API's list and bulk
reprocess, the `reprocess_orders` command, and the admin's order list and its bulk actions
all select through `orders_matching`."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import QueryDict
from django_filters.fields import IsoDateTimeField

from orders.models import Order
from orders.selectors import orders_due, orders_failed_at

# The UTC offsets in use run from -12:00 to +14:00. Python reads any offset under 24 hours
# and PostgreSQL refuses those from 16 hours up, so a time outside the range is bad input.
MAX_UTC_OFFSET = timedelta(hours=14)


def as_utc(value: datetime) -> datetime:
    """A time with a UTC offset as UTC; ValueError saying why for an impossible offset or a
    time that leaves the calendar once in UTC."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("the UTC offset must be between -14:00 and +14:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


class TimeField(IsoDateTimeField):
    """An ISO 8601 time with a possible UTC offset, as UTC (the databases' time)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return as_utc(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid") from None


class TimeFilter(django_filters.IsoDateTimeFilter):
    field_class = TimeField


DUE_CHOICES = [("now", "Due now (backlog)")]


class OrderFilterSet(django_filters.FilterSet):
    """The filters of the API's order list (contract section 6), which also select the
    orders of a bulk reprocess."""

    status = django_filters.MultipleChoiceFilter(
        choices=Order.Status.choices, method="filter_status"
    )
    workflow = django_filters.CharFilter(field_name="workflow")
    created_after = TimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = TimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(method="filter_search", label="Order id contains")
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("finished_at", "finished_at"),
            ("order_id", "order_id"),
            ("status", "status"),
            ("workflow", "workflow"),
        )
    )

    # The filters that narrow a selection; `ordering` alone selects everything.
    SELECTING = ("status", "workflow", "created_after", "created_before", "search")

    class Meta:
        model = Order
        fields = ["status", "workflow", "created_after", "created_before", "search"]

    def filter_status(self, queryset, name, value):
        """`status IN (…)`, which the index `order_lease` (status, …) serves. django-filter's
        own filter adds DISTINCT over every column (an order cannot repeat here), so the
        count sorted every matching order, and ORs one equality per status, which PostgreSQL
        may read as a filter over the whole index."""
        return queryset.filter(status__in=value)

    def filter_search(self, queryset, name, value):
        """Order ids that contain `value`, in any case: UPPER(order_id) LIKE UPPER('%…%'),
        which the trigram index `order_id_trgm` serves on PostgreSQL (migration 0005)."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(order_id__icontains=value)


class OrderListFilterSet(OrderFilterSet):
    """The admin order list's filters: the API's, and the ones the dashboard links to and
    the list's search, which the contract's API does not have."""

    due = django_filters.ChoiceFilter(choices=DUE_CHOICES, method="filter_due")
    failed_step = django_filters.CharFilter(
        method="filter_failed_step", label="Failed in the last 24 hours at step"
    )
    order_id = django_filters.CharFilter(
        method="filter_order_id", label="The order id, or its beginning"
    )

    def filter_due(self, queryset, name, value):
        return orders_due(base=queryset)

    def filter_failed_step(self, queryset, name, value):
        return orders_failed_at(value, base=queryset)

    def filter_order_id(self, queryset, name, value):
        """The order with this id, or else the orders whose id begins with it: the unique
        index on order_id serves both."""
        exact = queryset.filter(order_id=value)
        if exact.exists():
            return exact
        return queryset.filter(order_id__startswith=value)


class SelectionInvalid(ValueError):
    """Filters whose values do not parse; `errors` maps each filter to its messages."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__(
            "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        )


def orders_matching(
    filters: Mapping,
    *,
    order_ids: list[str] | None = None,
    base: QuerySet | None = None,
    filterset: type[OrderFilterSet] = OrderFilterSet,
) -> QuerySet:
    """The orders of `base` (default: all) that `filters` select, among `order_ids` when
    given. `filters` is a query string or plain values (JSON bodies, command options), where
    a list repeats a filter. Raises SelectionInvalid for values that do not parse."""
    queryset = Order.objects.all() if base is None else base
    if order_ids is not None:
        queryset = queryset.filter(order_id__in=order_ids)
    selection = filterset(data=query_data(filters), queryset=queryset)
    if not selection.is_valid():
        raise SelectionInvalid(selection.errors)
    return selection.qs


def selection_is_narrowed(filters: Mapping, *, order_ids: list[str] | None = None) -> bool:
    """Whether a selection names orders or has a filter that narrows it: the bulk reprocess
    refuses one that would take every order (`ordering` alone, an empty status list or a
    blank search narrow nothing)."""
    return bool(order_ids) or any(narrows(filters.get(name)) for name in OrderFilterSet.SELECTING)


def narrows(value) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(narrows(item) for item in value)
    return value is not None


def query_data(filters: Mapping) -> QueryDict:
    """`filters` as a query string; plain values become text, lists repeated filters."""
    if isinstance(filters, QueryDict):
        return filters
    query = QueryDict(mutable=True)
    for name, value in filters.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        query.setlist(name, [str(item) for item in values])
    return query
