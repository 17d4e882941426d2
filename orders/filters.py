"""The orders a filter selects, one definition for every door: the API's list and bulk
reprocess, the `reprocess_orders` command, and the admin's order list and its bulk actions
all select through `orders_matching`."""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import connections
from django.db.models import CharField, F, Func, Q, QuerySet, TextField, Value
from django.db.models.lookups import Exact, In
from django.http import QueryDict
from django_filters.fields import IsoDateTimeField

from core.errors import ServiceError
from core.storable import shown, text_problem
from orders.hosts_held import orders_held_by
from orders.models import BatchRun, Order
from orders.selectors import orders_due, orders_failed_at, orders_logged_during

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


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class OrderListFilterSet(OrderFilterSet):
    """The admin order list's filters: the API's, and why orders failed (support's sidebar,
    the dashboard's links) and the batch pages' links, which the contract's API does not
    have."""

    due = django_filters.ChoiceFilter(choices=DUE_CHOICES, method="filter_due")
    failed_step = django_filters.CharFilter(method="filter_failed_step", label="Failed step")
    error = django_filters.CharFilter(
        method="filter_error",
        label="Error contains: the failed attempt's reason or the text the order ended with",
    )
    http_status = django_filters.CharFilter(
        method="filter_http_status",
        label="HTTP status of the failure",
        validators=[
            RegexValidator(r"^[1-5]([0-9]{2}|xx)$", "a status such as 502, or a class: 5xx")
        ],
    )
    blueprint_version = IntegerFilter(
        field_name="snapshot__blueprint_version", min_value=1, max_value=2**31 - 1
    )
    batch = IntegerFilter(method="filter_batch", min_value=1, max_value=2**63 - 1)
    # The dashboard's and a host page's link: the orders an outbound host's gate holds.
    held_by = django_filters.CharFilter(method="filter_held_by", label="Held by host")
    # An alert's link: the orders that finished within its window.
    finished_after = TimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = TimeFilter(field_name="finished_at", lookup_expr="lt")

    def filter_due(self, queryset, name, value):
        return orders_due(base=queryset)

    def filter_error(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(Q(error__icontains=value) | Q(failed_reason__icontains=value))

    def filter_failed_step(self, queryset, name, value):
        return orders_failed_at(value, base=queryset)

    def filter_http_status(self, queryset, name, value):
        """The engine records a status only with the step that failed, so the orders with
        one are among those the partial index `order_failed_step` holds: read them there."""
        queryset = queryset.exclude(failed_step="")
        if value.endswith("xx"):
            lowest = int(value[0]) * 100
            return queryset.filter(failed_http_status__range=(lowest, lowest + 99))
        return queryset.filter(failed_http_status=int(value))

    def filter_held_by(self, queryset, name, value):
        return queryset & orders_held_by(value.strip().lower().rstrip("."))

    def filter_batch(self, queryset, name, value):
        batch = BatchRun.objects.filter(pk=value).first()
        return queryset.none() if batch is None else orders_logged_during(batch, base=queryset)


class SelectionInvalid(ServiceError, ValueError):
    """Filters whose values do not parse; `errors` maps each filter to its messages."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__(
            "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        )

    @property
    def reasons(self) -> list[str]:
        """A line for each message of each filter."""
        return [f"{name}: {m}" for name, messages in self.errors.items() for m in messages]


def orders_matching(
    filters: Mapping,
    *,
    order_ids: list[str] | None = None,
    base: QuerySet | None = None,
    filterset: type[OrderFilterSet] = OrderFilterSet,
) -> QuerySet:
    """The orders of `base` (default: all) that `filters` select, among `order_ids` when
    given. `filters` is a query string or plain values (JSON bodies, command options), where
    a list repeats a filter; business keys (`payload.<path>`, `data.<path>`) among them
    select too. Raises SelectionInvalid for values that do not parse."""
    queryset = Order.objects.all() if base is None else base
    if order_ids is not None:
        queryset = queryset.filter(order_id__in=order_ids)
    query = query_data(filters)
    selection = filterset(data=query, queryset=queryset)
    errors = {} if selection.is_valid() else dict(selection.errors)
    try:
        keys = business_keys(query)
    except SelectionInvalid as exc:
        keys, errors = [], {**errors, **exc.errors}
    if errors:
        raise SelectionInvalid(errors)
    return orders_with_keys(selection.qs, keys)


def selection_is_narrowed(filters: Mapping, *, order_ids: list[str] | None = None) -> bool:
    """Whether a selection names orders or has a filter that narrows it: the bulk reprocess
    refuses one that would take every order (`ordering` alone, an empty status list or a
    blank search narrow nothing; a business key narrows, even to the empty text)."""
    return (
        bool(order_ids)
        or any(narrows(filters.get(name)) for name in OrderFilterSet.SELECTING)
        or any(
            is_business_key(name) and value not in (None, [], ()) for name, value in filters.items()
        )
    )


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


# Business keys (contract section 6): `payload.<path>=<value>` and `data.<path>=<value>`
# select the orders whose payload or saved data holds the value at that path.
KEY_COLUMNS = ("payload", "data")
MAX_KEYS = 20
MAX_KEY_PATH = 200  # characters
MAX_KEY_VALUE = 1000  # characters
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
JSON_WORDS = {"true": True, "false": False, "null": None}
INT64 = 2**63


def is_business_key(name: str) -> bool:
    """Whether a filter's name is a business key: `payload.…` or `data.…`."""
    return name.startswith(tuple(f"{column}." for column in KEY_COLUMNS))


def split_business_key(text: str) -> tuple[str, str]:
    """`payload.customer.id=C-42` as its name and value, for the doors that take both in one
    text (the command's `--key`, the admin's search); ValueError if it is not one.

    >>> split_business_key("payload.customer.id=C-42=b")
    ('payload.customer.id', 'C-42=b')
    """
    name, equals, value = text.partition("=")
    if not equals or not is_business_key(name):
        raise ValueError(f"{shown(text)} is not payload.<path>=<value> or data.<path>=<value>")
    return name, value


def json_values(text: str) -> list:
    """The JSON values a business key's value matches "as text": the string itself, and the
    number, `true`, `false` or `null` it spells (numbers compare as numbers).

    >>> json_values("C-42"), json_values("2"), json_values("2.50")
    (['C-42'], ['2', 2], ['2.50', 2.5])
    >>> json_values("true"), json_values("null"), json_values("True")
    (['true', True], ['null', None], ['True'])
    >>> json_values("02"), json_values(" 2"), json_values("1e999")
    (['02'], [' 2'], ['1e999'])
    """
    if text in JSON_WORDS:
        return [text, JSON_WORDS[text]]
    if JSON_NUMBER.fullmatch(text):
        number = json.loads(text)
        # Beyond these a number could not be compared alike on both databases.
        if math.isfinite(number) if isinstance(number, float) else -INT64 <= number < INT64:
            return [text, number]
    return [text]


@dataclass(frozen=True)
class BusinessKey:
    """Orders whose `column` (payload or data) holds one of `values` at `path`, a path of
    object keys (a list is not indexed into)."""

    column: str
    path: tuple[str, ...]
    values: tuple[str, ...]

    def condition(self, vendor: str) -> Q:
        """On PostgreSQL an OR of containments (`payload @> '{"customer": {"id": "C-42"}}'`),
        each served by the GIN index of migration 0007; elsewhere the same test on the
        value's JSON type and value at the path."""
        candidates = [value for text in self.values for value in json_values(text)]
        matches = Q()
        for value in candidates:
            if vendor == "postgresql":
                nested = value
                for key in reversed(self.path):
                    nested = {key: nested}
                matches |= Q(**{f"{self.column}__contains": nested})
            else:
                matches |= self.json_path_test(value)
        return matches

    def json_path_test(self, value) -> Q:
        """SQLite's JSON_TYPE and JSON_EXTRACT at the path: a JSON 1 and `true` both
        extract as 1, so the type tells them apart. Keys are written as Django stores
        them (json.dumps, non-ASCII escaped), which SQLite compares as written."""
        path = "$" + "".join(f".{json.dumps(key)}" for key in self.path)
        kind = Func(F(self.column), Value(path), function="JSON_TYPE", output_field=CharField())
        if value is None or isinstance(value, bool):
            return Q(Exact(kind, json.dumps(value)))
        extracted = Func(
            F(self.column), Value(path), function="JSON_EXTRACT", output_field=TextField()
        )
        types = ["text"] if isinstance(value, str) else ["integer", "real"]
        return Q(In(kind, types)) & Q(Exact(extracted, Value(value)))


def business_keys(query: QueryDict) -> list[BusinessKey]:
    """The business keys among a query's filters; the values of a repeated one are
    alternatives, different ones must all match. SelectionInvalid names each bad one."""
    keys, errors = [], {}
    for name, values in query.lists():
        if not is_business_key(name) or not values:
            continue
        try:
            keys.append(business_key(name, values))
        except ValueError as exc:
            errors[name] = [str(exc)]
    if len(keys) > MAX_KEYS:
        errors["business keys"] = [f"at most {MAX_KEYS} (payload.<path> and data.<path>)"]
    if errors:
        raise SelectionInvalid(errors)
    return keys


def business_key(name: str, values: list[str]) -> BusinessKey:
    column, _, path = name.partition(".")
    if len(path) > MAX_KEY_PATH:
        raise ValueError(f"the path is longer than {MAX_KEY_PATH} characters")
    for key in path.split("."):
        if not key:
            raise ValueError(f"an empty key in the path: write {column}.<key>.<key>=<value>")
        if key.isascii() and key.isdigit():
            raise ValueError(
                f'"{key}" is a list position; a path names object keys only, lists are not indexed'
            )
        if '"' in key or text_problem(key):
            raise ValueError(f"the key {shown(key)} {text_problem(key) or 'contains a quote'}")
    for value in values:
        if len(value) > MAX_KEY_VALUE:
            raise ValueError(f"the value is longer than {MAX_KEY_VALUE} characters")
        if text_problem(value):
            raise ValueError(f"the value {text_problem(value)}")
    return BusinessKey(column=column, path=tuple(path.split(".")), values=tuple(values))


def orders_with_keys(queryset: QuerySet, keys: list[BusinessKey]) -> QuerySet:
    vendor = connections[queryset.db].vendor
    for key in keys:
        queryset = queryset.filter(key.condition(vendor))
    return queryset
