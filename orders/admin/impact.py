"""The admin's "Impact of a change" page of a blueprint (editors): a version, or the
definition as the editor is about to save it, replayed over the blueprint's recorded
orders, each call answered as the order's latest run recorded it; nothing sent or saved.

Like the dry run it runs the engine: `orders.admin.blueprint_pages` adds it to the site.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from blueprints.models import Blueprint
from core.admin import PrettyJSONField
from definitions.admin import add_definition_errors
from orders.impact import MAX_ORDERS, ImpactInvalid, NoSuchVersion, blueprint_impact
from orders.models import Order

SHOWN = 200


class ImpactForm(forms.Form):
    definition = PrettyJSONField(
        help_text="The blueprint as you would save it (its steps changed, say); it is checked "
        "as a save checks it. Nothing is saved."
    )
    limit = forms.IntegerField(
        min_value=1,
        max_value=MAX_ORDERS,
        initial=100,
        help_text=f"The newest finished orders to replay (at most {MAX_ORDERS:,}).",
    )


def blueprint_impact_view(request, object_id):
    blueprint = get_object_or_404(Blueprint, pk=object_id)
    if not request.user.has_perm("blueprints.change_blueprint"):
        raise PermissionDenied
    initial = {"definition": blueprint.as_definition(), "limit": 100}
    posted = request.POST
    if "steps" in posted and "definition" not in posted:  # from the blueprint's own form
        posted = {"definition": json.dumps(edited_definition(blueprint, posted)), "limit": 100}
    form = ImpactForm(posted or None, initial=initial)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = blueprint_impact(
                blueprint=blueprint,
                version=form.cleaned_data["definition"],
                orders=Order.objects.all(),
                limit=form.cleaned_data["limit"],
            )
        except (ImpactInvalid, NoSuchVersion) as exc:
            errors = getattr(exc, "errors", [str(exc)])
            add_definition_errors(
                form,
                [error.removeprefix("version.") for error in errors],
                field_for=lambda head: "definition",
            )
    rows = []
    if result:
        rows = [
            {**row, "now_json": _short(row["now"]), "would_json": _short(row["would"])}
            for row in result["orders"]
            if row["outcome"] != "same"
        ][:SHOWN]
    context = {
        **admin.site.each_context(request),
        "title": f"Impact of a change to {blueprint.slug}",
        "opts": Blueprint._meta,
        "original": blueprint,
        "form": form,
        "result": result,
        "rows": rows,
        "shown": SHOWN,
    }
    return TemplateResponse(request, "admin/orders/impact.html", context)


def edited_definition(blueprint: Blueprint, posted) -> dict:
    """The definition the blueprint's change form holds, not yet saved: its JSON fields as
    typed (one that does not parse is kept as text, for the check to name), the rest as
    the form gives it."""
    definition = blueprint.as_definition()
    for key in ("name", "description", "notify_url", "concurrency_key"):
        if key in posted:
            value = posted[key].strip()
            if value:
                definition[key] = value
            else:
                definition.pop(key, None)
    for key in ("steps", "input_schema"):
        text = posted.get(key, "").strip()
        if not text:
            if key == "input_schema":
                definition.pop(key, None)
            continue
        try:
            definition[key] = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            definition[key] = text
    return definition


def _short(end: dict) -> str:
    return f"{end['status']} at {end['end_step'] or '—'}, data {json.dumps(end['data'])}"
