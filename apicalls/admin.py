"""API calls in the admin: the contract JSON in an indented editor, checked by the one
validator with each error at its field, saved as a new version, and tried out (rendered,
never sent) for a sample input."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from apicalls.models import ApiCall, ApiCallVersion
from apicalls.reasons import reason_for
from apicalls.rendering import preview_context, render_preview
from apicalls.services import api_call_delete, api_call_save, api_call_users, connection_errors
from connections.selectors import connection_names
from core.admin import PrettyJSONField
from definitions.admin import DefinitionAdmin, ObjectDefinitionForm, UsedByAdmin
from definitions.admin_versions import VersionPages, VersionsInline
from definitions.validation import api_call_errors
from expressions import ExpressionError
from expressions.secrets import mask

DEFINITION_EXAMPLE = {
    "method": "POST",
    "url": "{{ secrets.SHOP_URL }}/quotes",
    "headers": {"Authorization": "Bearer {{ secrets.SHOP_TOKEN }}"},
    "body": {"sku": "{{ input.sku }}"},
    "timeout_seconds": 10,
    "retry": {"max_attempts": 3},
    "save": {"total": "{{ response.body.total }}"},
}


class ApiCallForm(ObjectDefinitionForm):
    definition = PrettyJSONField(
        initial=DEFINITION_EXAMPLE,
        help_text=mark_safe(  # a constant: nothing in it comes from a user
            "method, url, connection, headers, query, body, body_type, timeout_seconds, "
            "success_when, error_message, retry, save; strings may hold {{ expressions }}. "
            "<code>error_message</code>: the partner's reason for a failed attempt, e.g. "
            "<code>{{ response.body.error.text }}</code> (default: the body's "
            "<code>error</code>, <code>error.message</code>, <code>message</code> or "
            "<code>detail</code>). "
            "<code>body_type</code>: <code>json</code> (default), <code>form</code> "
            "(urlencoded, nested values as <code>metadata[order_id]</code>), "
            '<code>multipart</code> (a value <code>{"filename", "content_type", '
            '"content"}</code> or with <code>content_base64</code> is a file part) or '
            "<code>text</code> (one string template, e.g. SOAP XML; set "
            "<code>Content-Type</code> in headers). See docs/partners.md."
        ),
    )

    class Meta:
        model = ApiCall
        fields = ("slug", "name", "definition")

    def errors_of(self, definition: dict) -> list[str]:
        return api_call_errors(definition) or connection_errors(
            definition, connection_names=connection_names()
        )


VERSIONS_NOTE = (
    "Each order runs on its blueprint and the API calls it uses as they were when the order "
    "was created: a new version of this API call is used by orders created from now on, and "
    "by orders reprocessed on the latest version; orders already created keep theirs."
)


class ApiCallVersionInline(VersionsInline):
    model = ApiCallVersion
    versions_note = VERSIONS_NOTE
    nobody = "no blueprint"


FAILED_RESPONSE_EXAMPLE = {"status": 402, "headers": {}, "body": {"error": "card declined"}}


class TryItForm(forms.Form):
    input = PrettyJSONField(
        initial={},
        required=False,
        help_text=format_html("A sample order payload (<code>{}</code>).", "input.*"),
    )
    params = PrettyJSONField(
        initial={},
        required=False,
        help_text=format_html("A step's params (<code>{}</code>).", "params.*"),
    )
    data = PrettyJSONField(
        initial={},
        required=False,
        help_text=format_html("Values saved by earlier steps (<code>{}</code>).", "data.*"),
    )
    failed_response = PrettyJSONField(
        initial=FAILED_RESPONSE_EXAMPLE,
        required=False,
        help_text=format_html(
            "A partner's refusal (<code>{}</code>, <code>{}</code>): the reason a failed "
            "attempt would give, by <code>error_message</code> or its default.",
            "status",
            "body",
        ),
    )


@admin.register(ApiCall)
class ApiCallAdmin(VersionPages, UsedByAdmin, DefinitionAdmin):
    form = ApiCallForm
    list_display = ("slug", "name", "method", "url", "version", "updated_at")
    list_filter = ("updated_at",)
    search_fields = ("slug", "name")
    readonly_fields = ("version", "created_at", "updated_at", "used_by")
    json_fields = ("definition",)
    inlines = [ApiCallVersionInline]
    fieldsets = (
        (None, {"fields": ("slug", "name", ("version", "updated_at"), "used_by")}),
        ("Definition", {"fields": ("definition",)}),
    )

    versions_note = VERSIONS_NOTE
    nobody = "no blueprint"

    def save_definition(self, *, definition, user):
        return api_call_save(definition=definition, user=user)

    @admin.display(description="method")
    def method(self, obj):
        return obj.definition.get("method", "")

    @admin.display(description="URL")
    def url(self, obj):
        return obj.definition.get("url", "")

    def users_of(self, obj):
        return api_call_users(obj.slug)

    def delete_model(self, request, obj):
        api_call_delete(api_call=obj)

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/try/",
                self.admin_site.admin_view(self.try_it_view),
                name="apicalls_apicall_try",
            )
        ]
        return urls + super().get_urls()

    def try_it_view(self, request, object_id):
        """Render the request for a sample input, as the engine would, and send nothing."""
        api_call = get_object_or_404(ApiCall, pk=object_id)
        if not self.has_view_or_change_permission(request, api_call):
            raise PermissionDenied
        form = TryItForm(request.POST or None)
        preview = error = reason = None
        if request.method == "POST" and form.is_valid():
            sample = {
                "input": form.cleaned_data.get("input") or {},
                "params": form.cleaned_data.get("params") or {},
                "data": form.cleaned_data.get("data") or {},
            }
            try:
                preview = render_preview(api_call.as_definition(), **sample)
            except ExpressionError as exc:
                error = str(exc)
            reason = sample_reason(api_call.as_definition(), form.cleaned_data, sample)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Try {api_call.slug}",
            "opts": self.model._meta,
            "original": api_call,
            "form": form,
            "preview": preview,
            "preview_headers": json.dumps(preview["headers"], indent=2) if preview else "",
            "preview_body": json.dumps(preview["body"], indent=2) if preview else "",
            "error": error,
            "reason": reason,
        }
        return TemplateResponse(request, "admin/apicalls/apicall/try_it.html", context)


def sample_reason(api_call: dict, cleaned: dict, sample: dict) -> str | None:
    """The reason a failed attempt would give for the form's sample refusal, secrets
    masked; None without one."""
    response = cleaned.get("failed_response")
    if not isinstance(response, dict):
        return None
    response = {"status": None, "headers": {}, "body": None, **response}
    context = preview_context(**sample)
    text = reason_for(api_call, response, context)
    return mask(text, context["secrets"].values())
