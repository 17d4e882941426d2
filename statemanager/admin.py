"""The admin site as the product's workplace: its title, the dashboard on the index, and the
pieces the definition and order admins share (JSON editing, errors at their fields)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from blueprints.storable import escape_lone_surrogates

admin.site.site_header = "State Manager"
admin.site.site_title = "State Manager"
admin.site.index_title = "Dashboard"


class JSONEditor(forms.Textarea):
    """A monospace textarea sized to its content, for the contract's JSON."""

    def __init__(self, attrs=None):
        super().__init__({"class": "sm-json-editor", "spellcheck": "false", **(attrs or {})})

    def format_value(self, value):
        text = super().format_value(value) or ""
        self.attrs["rows"] = min(max(text.count("\n") + 2, 6), 40)
        return text


class PrettyJSONField(forms.JSONField):
    """A JSON form field that shows its value indented, keys in the order they were written."""

    widget = JSONEditor

    # JSON nested deeper than Python's recursion limit cannot be parsed: say so at the field.
    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError("nested too deeply", code="invalid") from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        text = json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)
        return escape_lone_surrogates(text)  # refused on save, but shown again at the field


def json_block(value) -> str:
    """A read-only, indented JSON value for admin pages."""
    if value in (None, "", {}, []):
        return format_html('<span class="sm-muted">{}</span>', json.dumps(value))
    return format_html('<pre class="sm-json">{}</pre>', json_text(value))


def json_text(value) -> str:
    """A JSON value indented, or a note when it is nested too deeply to show.

    The doors refuse deep JSON (STATE_MANAGER_MAX_JSON_DEPTH), but a stored value may
    predate that, and indenting recurses once per level: the page must open all the same.
    """
    try:
        return json.dumps(value, indent=2)
    except RecursionError:
        return "(nested too deeply to show)"


_PLACE_HEAD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)")


def add_definition_errors(
    form: forms.Form, errors: Iterable[str], *, field_for: Callable[[str], str | None]
) -> None:
    """Show each `"<place>: <reason>"` of a DefinitionError at the form field it belongs to.

    `field_for` maps the place's first name (`steps`, `url`, ...) to a field, or None for
    the errors that belong to the whole form.
    """
    for error in errors:
        match = _PLACE_HEAD.match(error)
        head = match.group(1) if match and ":" in error else ""
        field = field_for(head)
        form.add_error(field if field in form.fields else None, error)


# The dashboard.


def order_list_url(**filters) -> str:
    url = reverse("admin:orders_order_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def dashboard_context() -> dict:
    """Orders by status, the due backlog, the last batch and the failing steps of the day.

    Costs the same whatever the table holds: counts stop at `COUNT_CAP` ("10,000+"), and
    all orders together are PostgreSQL's estimate once the table is large.
    """
    from orders.models import Order
    from orders.selectors import (
        COUNT_CAP,
        failed_steps_since,
        last_batch,
        oldest_due_at,
        order_counts_by_status,
        orders_due_count,
        orders_total,
        running_lanes,
        steps_per_minute,
    )

    def shown(count: int) -> str:
        return f"{COUNT_CAP:,}+" if count >= COUNT_CAP else f"{count:,}"

    counts = order_counts_by_status()
    total, estimated = orders_total()
    due = orders_due_count()
    batch = last_batch()
    duration = None
    if batch is not None and batch.ended_at is not None:
        duration = (batch.ended_at - batch.started_at).total_seconds()
    since = timezone.now() - timedelta(hours=24)
    return {
        "status_counts": [
            {
                "status": status,
                "label": label,
                "count": counts.get(status, 0),
                "shown": shown(counts.get(status, 0)),
                "url": order_list_url(status__exact=status),
            }
            for status, label in Order.Status.choices
        ],
        "orders_total": total,
        "orders_total_shown": f"about {total:,}" if estimated else f"{total:,}",
        "due_count": due,
        "due_shown": shown(due),
        "oldest_due_at": oldest_due_at() if due else None,
        "due_url": order_list_url(due="now"),
        "lanes": running_lanes(),
        "steps_chart": steps_chart(steps_per_minute(15)),
        "last_batch": batch,
        "last_batch_seconds": duration,
        "batch_list_url": reverse("admin:orders_batchrun_changelist"),
        "failed_steps": [
            {
                "step": step,
                "count": count,
                "url": order_list_url(failed_step=step),
            }
            for step, count in failed_steps_since(since)[:10]
        ],
        "functions_url": reverse("admin:blueprints_blueprint_functions"),
    }


def steps_chart(counts: list[int], *, width: int = 260, height: int = 60) -> dict:
    """Bars of an inline SVG for steps per minute, oldest first, scaled to the busiest."""
    peak = max(counts) or 1
    step = width / len(counts)
    bars = [
        {
            "x": round(index * step + 1, 1),
            "width": round(step - 2, 1),
            "height": max(1.0, round(height * count / peak, 1)),  # an empty minute: a tick
            "y": round(height - max(1.0, height * count / peak), 1),
            "count": count,
            "minutes_ago": len(counts) - 1 - index,
        }
        for index, count in enumerate(counts)
    ]
    return {"bars": bars, "width": width, "height": height, "peak": max(counts), "now": counts[-1]}


_site_index = admin.site.index


def dashboard_index(request, extra_context=None):
    """The admin index with the dashboard, for those who may see orders."""
    context = dict(extra_context or {})
    if request.user.has_perm("orders.view_order"):
        context.update(dashboard_context())
    return _site_index(request, extra_context=context)


admin.site.index = dashboard_index
