"""The one filter of orders: the API list, the bulk reprocess, the command and the admin."""

from datetime import UTC, datetime, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django_filters.fields import IsoDateTimeField

from orders.models import Order

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


class OrderFilterSet(django_filters.FilterSet):
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

    def selects(self) -> bool:
        """Whether any narrowing filter was given (bulk operations refuse "everything")."""
        return any(self.data.get(name) not in (None, "", []) for name in self.SELECTING)


def order_filterset(data: dict, queryset=None) -> OrderFilterSet:
    """An OrderFilterSet over plain values (JSON bodies, command options): lists become repeats."""
    query = QueryDict(mutable=True)
    for name, value in data.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        query.setlist(name, [str(item) for item in values])
    return OrderFilterSet(
        data=query, queryset=queryset if queryset is not None else Order.objects.all()
    )
