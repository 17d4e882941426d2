"""The admin's "Dry run" page of a blueprint: a sample payload and sample responses in, the
path the engine would take out, nothing sent.

The page belongs to the blueprint but runs the engine: `orders.admin.blueprint_pages`
adds it to the admin site.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.html import format_html

from blueprints.models import Blueprint
from core.admin import PrettyJSONField, json_text
from definitions.admin import add_definition_errors
from orders.engine.dry_run import (
    Attempt,
    DryRun,
    DryRunInvalid,
    blueprint_dry_run,
    call_step_paths,
)

RESPONSES_HELP = format_html(
    "Per step id (a parallel branch: <code>{}</code>; a map's item: <code>{}</code>, "
    "else the map step's id answers every item), what its API call answers: "
    "<code>{}</code>, every key optional, or a list of them, one per attempt. "
    "A step without one gets 200 with <code>{{}}</code>; a callback comes back as a "
    "success with empty data unless its sample says otherwise.",
    "step.branch",
    "step[index]",
    '{"status": 200, "body": {}, "headers": {}, '
    '"callback": {"outcome": "success|failure|timeout", "data": {}}}',
)


class DryRunForm(forms.Form):
    payload = PrettyJSONField(
        initial={},
        help_text=format_html(
            "A sample order payload (<code>{}</code>), checked by the blueprint's input schema.",
            "input.*",
        ),
    )
    responses = PrettyJSONField(initial={}, required=False, help_text=RESPONSES_HELP)

    def clean_payload(self):
        payload = self.cleaned_data.get("payload")
        if payload is None:
            raise forms.ValidationError("Enter a JSON value, e.g. {}.")
        return payload


def may_dry_run(user) -> bool:
    """Whoever may see blueprints (editors and support) may dry-run them."""
    return user.has_perm("blueprints.view_blueprint") or user.has_perm(
        "blueprints.change_blueprint"
    )


def blueprint_dry_run_view(request, object_id):
    blueprint = get_object_or_404(Blueprint, pk=object_id)
    if not may_dry_run(request.user):
        raise PermissionDenied
    form = DryRunForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = blueprint_dry_run(
                blueprint=blueprint,
                payload=form.cleaned_data["payload"],
                responses=form.cleaned_data.get("responses") or {},
            )
        except DryRunInvalid as exc:
            add_definition_errors(form, exc.errors, field_for=lambda head: head)
    context = {
        **admin.site.each_context(request),
        "title": f"Dry run of {blueprint.slug}",
        "opts": Blueprint._meta,
        "original": blueprint,
        "form": form,
        "call_steps": call_step_paths(blueprint.steps),
        "result": result,
        "visits": visit_rows(result) if result else [],
        "end_data": json_text(result.end.data) if result else "",
    }
    return TemplateResponse(request, "admin/orders/dry_run.html", context)


def visit_rows(result: DryRun) -> list[dict]:
    """The visited steps with their JSON indented for the page; a step that sends nothing
    has one attempt row of None, so that each step takes one table row at least."""
    return [
        {
            "number": number,
            "visit": visit,
            "attempts": [attempt_row(attempt) for attempt in visit.attempts] or [None],
            "data": json_text(visit.data),
        }
        for number, visit in enumerate(result.steps, start=1)
    ]


def attempt_row(attempt: Attempt) -> dict:
    """An attempt with its JSON indented; its error only when the status does not say it."""
    request, response = attempt.request or {}, attempt.response or {}
    return {
        "attempt": attempt,
        "error": "" if attempt.error == f"HTTP {response.get('status')}" else attempt.error,
        "headers": json_text(request.get("headers")),
        "body": json_text(request.get("body")),
        "response_body": json_text(response.get("body")),
    }
