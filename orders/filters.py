"""The one filter of orders: the API list, the bulk reprocess, the command and the admin."""

import django_filters
from django.db.models import Q
from django.http import QueryDict

from orders.models import Order


class OrderFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Order.Status.choices)
    workflow = django_filters.CharFilter(field_name="workflow")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
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

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(order_id__startswith=value) | Q(order_id__icontains=value))

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
