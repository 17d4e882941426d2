"""Blueprints in the admin: the contract JSON in an indented editor, checked by the one
validator with each error at its field, saved as a new version, drawn as a flow diagram."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.safestring import mark_safe

from blueprints.diagram import blueprint_svg
from blueprints.models import Blueprint, BlueprintVersion
from blueprints.services import api_call_slugs, blueprint_save
from definitions.admin import (
    DefinitionAdmin,
    DefinitionVersionInline,
    PrettyJSONField,
    add_definition_errors,
    may_read_definitions,
)
from definitions.validation import DefinitionError, validate_blueprint
from expressions import registered_functions

BLUEPRINT_FIELDS = ("slug", "name", "description", "input_schema", "steps")


class BlueprintForm(forms.ModelForm):
    input_schema = PrettyJSONField(
        required=False, help_text="JSON Schema every order's payload must satisfy; empty for none."
    )
    steps = PrettyJSONField(help_text="The ordered list of steps (call, choice, parallel, end).")

    class Meta:
        model = Blueprint
        fields = BLUEPRINT_FIELDS

    def contract_json(self) -> dict:
        """The contract JSON of what was entered."""
        data = self.cleaned_data
        slug = data.get("slug") or (self.instance.slug if self.instance.pk else "")
        definition = {"slug": slug, "name": data.get("name", "")}
        if data.get("description"):
            definition["description"] = data["description"]
        if data.get("input_schema") is not None:
            definition["input_schema"] = data["input_schema"]
        definition["steps"] = data.get("steps")
        return definition

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            validate_blueprint(self.contract_json(), api_call_slugs=api_call_slugs())
        except DefinitionError as exc:
            add_definition_errors(self, exc.errors, field_for=self.field_for)
        return cleaned

    @staticmethod
    def field_for(head: str) -> str | None:
        return head if head in BLUEPRINT_FIELDS else None


class BlueprintVersionInline(DefinitionVersionInline):
    model = BlueprintVersion


@admin.register(Blueprint)
class BlueprintAdmin(DefinitionAdmin):
    form = BlueprintForm
    list_display = ("slug", "name", "step_count", "version", "updated_at")
    list_filter = ("updated_at",)
    search_fields = ("slug", "name", "description")
    readonly_fields = ("version", "created_at", "updated_at", "diagram")
    inlines = [BlueprintVersionInline]
    fieldsets = (
        (None, {"fields": ("slug", "name", "description", ("version", "updated_at"))}),
        ("Input", {"fields": ("input_schema",)}),
        (
            "Steps and flow",
            {
                "fields": (("steps", "diagram"),),
                "description": "The diagram shows the steps as last saved.",
            },
        ),
    )

    def save_definition(self, *, definition, user):
        return blueprint_save(definition=definition, user=user)

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps) if isinstance(obj.steps, list) else 0

    @admin.display(description="flow diagram")
    def diagram(self, obj):
        if obj is None or obj.pk is None:
            return "Save the blueprint to see its flow."
        return mark_safe(f'<div class="sm-diagram-box">{blueprint_svg(obj.as_definition())}</div>')

    def get_urls(self):
        urls = [
            path(
                "functions/",
                self.admin_site.admin_view(self.functions_view),
                name="blueprints_blueprint_functions",
            )
        ]
        return urls + super().get_urls()

    def functions_view(self, request):
        """The functions expressions may use, with their docs."""
        if not may_read_definitions(request.user):
            raise PermissionDenied
        functions = registered_functions()
        context = {
            **self.admin_site.each_context(request),
            "title": "Functions for expressions",
            "opts": self.model._meta,
            "project_functions": [f for f in functions if not f.builtin],
            "builtin_functions": [f for f in functions if f.builtin],
        }
        return TemplateResponse(request, "admin/blueprints/functions.html", context)
