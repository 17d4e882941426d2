"""Why orders failed, in the order list: the columns support reads (the step that failed,
the error's first line, the HTTP status, the attempts, the blueprint version, times to the
second) and the sidebar filters that select by them through the order filter set."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from core.admin import to_the_second
from orders.admin.order_list import OrderListFilter, list_matching
from orders.models import BatchRun
from orders.selectors import failing_steps

# The most of an error a cell's hover text shows; the order page has it all.
ERROR_HOVER_CHARACTERS = 1000


def clipped(text: str, hover: str | None = None) -> str:
    """Text cut with an ellipsis where its column ends (CSS), whole on hover."""
    return format_html('<span class="sm-clip" title="{}">{}</span>', hover or text, text)


def date_over_time(value) -> str:
    """A time to the second, the date above the time: narrow enough for the list."""
    if not value:
        return ""
    local = localtime(value)
    return format_html(
        '<span class="sm-date">{}</span><br>{}',
        date_format(local, "Y-m-d"),
        date_format(local, "H:i:s"),
    )


class FailedStepFilter(OrderListFilter):
    """The step whose failure the run took, not the `end` step its `on_failed` path led to
    (the dashboard's failures link here). The choices are the steps that can fail in the
    blueprints (of the chosen workflow), not a DISTINCT over every order."""

    title = "failed step"
    parameter_name = filter_name = "failed_step"

    def lookups(self, request, model_admin):
        steps = failing_steps(request.GET.get("workflow", ""))
        value = self.value()
        if value and value not in steps:
            steps.append(value)  # a step a newer version of its blueprint lost
        return [(step, step) for step in steps]


class TextFilter(OrderListFilter):
    """A filter of the sidebar with a text box instead of links; the list's other filters
    go along with what is typed."""

    template = "admin/orders/order/text_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):
        return ()

    def has_output(self):
        return True

    def choices(self, changelist):
        yield {
            "parameter": self.parameter_name,
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "others": [
                (name, value)
                for name, values in changelist.filter_params.items()
                if name != self.parameter_name
                for value in values
            ],
            "clear": changelist.get_query_string(remove=[self.parameter_name]),
        }


class ErrorFilter(TextFilter):
    title = "error"
    parameter_name = filter_name = "error"
    placeholder = "e.g. declined"


class HttpStatusFilter(TextFilter):
    title = "HTTP status"
    parameter_name = filter_name = "http_status"
    placeholder = "502 or 5xx"


class BlueprintVersionFilter(TextFilter):
    title = "blueprint version"
    parameter_name = filter_name = "blueprint_version"
    placeholder = "e.g. 3"


class BatchFilter(OrderListFilter):
    """Shown while a batch page's link is followed: the orders with a log entry written
    while that batch ran."""

    title = "logged during batch"
    parameter_name = filter_name = "batch"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value:
            return []
        batch = BatchRun.objects.filter(pk=value).first() if value.isdigit() else None
        return [(value, f"#{value}" if batch is None else batch_window(batch))]


class HeldByFilter(OrderListFilter):
    """Shown while the link of a host's held orders is followed (the dashboard, the host's
    page): the orders waiting for that host's gate."""

    title = "held by host"
    parameter_name = filter_name = "held_by"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, value)] if value else []


class FinishedWithinFilter(admin.ListFilter):
    """Shown while an alert's link is followed: the orders that finished from
    `finished_after` (included) to `finished_before` (excluded), ISO 8601 times."""

    title = "finish time"
    parameters = ("finished_after", "finished_before")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                self.used_parameters[name] = params.pop(name)

    def has_output(self):
        return bool(self.used_parameters)

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        if not self.used_parameters:
            return queryset
        return list_matching(self.used_parameters, queryset)

    def choices(self, changelist):
        yield {
            "selected": False,
            "query_string": changelist.get_query_string(remove=self.parameters),
            "display": "Any time",
        }
        after, before = (self.used_parameters.get(name, [""])[-1] for name in self.parameters)
        yield {
            "selected": True,
            "query_string": changelist.get_query_string(),
            "display": f"{shown_time(after) or 'any time'} to {shown_time(before) or 'now'}",
        }


def shown_time(text: str) -> str:
    """An ISO 8601 time of the URL to the second, in the admin's time zone ("" if none)."""
    try:
        return to_the_second(datetime.fromisoformat(text)) if text else ""
    except ValueError:
        return text


def batch_window(batch: BatchRun) -> str:
    ended = to_the_second(batch.ended_at)[11:] if batch.ended_at else "now"
    return f"#{batch.pk}, {to_the_second(batch.started_at)} to {ended}"


class FailureColumnsMixin:
    """The order list's columns, with why an order failed."""

    @admin.display(description="order id", ordering="order_id")
    def order_link(self, obj):
        return clipped(obj.order_id)

    @admin.display(description="workflow", ordering="workflow")
    def workflow_name(self, obj):
        return clipped(obj.workflow)

    @admin.display(description="current step")
    def current_step_name(self, obj):
        return clipped(obj.current_step) if obj.current_step else None

    @admin.display(description="failed step")
    def failed_step_display(self, obj):
        return clipped(obj.failed_step) if obj.failed_step else None

    @admin.display(description="HTTP")
    def http_status(self, obj):
        return obj.failed_http_status

    @admin.display(description="error")
    def error_line(self, obj):
        """The failed attempt's own reason, then the text the order ended with when that
        says something else (an end step's `error`), each cut after two lines of the
        column, whole on hover."""
        reason, ended = obj.failed_reason.strip(), obj.error.strip()
        if not reason and not ended:
            return None
        lines = [("sm-clip-lines sm-reason", reason)] if reason else []
        if ended and (not reason or reason not in ended):
            lines.append(("sm-clip-lines sm-ended" if reason else "sm-clip-lines", ended))
        return format_html_join(
            "",
            '<span class="{}" title="{}">{}</span>',
            ((css, text[:ERROR_HOVER_CHARACTERS], text.splitlines()[0]) for css, text in lines),
        )

    @admin.display(description="waiting for")
    def waiting_for_display(self, obj):
        """Set on each order of the page by the list (orders.waiting_for)."""
        found = getattr(obj, "waiting_for", None)
        if found is None:
            return None
        return format_html('<span class="sm-wait sm-wait-{}">{}</span>', found.kind, found.text)

    @admin.display(description="attempts")
    def attempts(self, obj):
        """Set on each order of the page by the list (one query for the page)."""
        return getattr(obj, "attempts_made", None)

    @admin.display(description="version")
    def blueprint_version(self, obj):
        return f"v{obj.snapshot.blueprint_version}"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return date_over_time(obj.created_at)

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj):
        return date_over_time(obj.updated_at)
