"""Blueprints in the admin: the contract JSON in an indented editor, checked by the one
validator with each error at its field, saved as a new version, drawn as a flow diagram."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from blueprints.diagram import blueprint_svg, draft_svg
from blueprints.models import Blueprint, BlueprintVersion
from blueprints.selectors import COUNT_CAP, orders_by_version, parked_order_count
from blueprints.services import (
    api_call_slugs,
    blueprint_pause,
    blueprint_resume,
    blueprint_save,
)
from core.admin import PrettyJSONField, doc_html, to_the_second
from definitions.admin import DefinitionAdmin, add_definition_errors, may_read_definitions
from definitions.admin_versions import VersionPages, VersionsInline
from definitions.graph import steps_left_out
from definitions.validation import DefinitionError, definition_warnings, validate_blueprint
from expressions import registered_functions

BLUEPRINT_FIELDS = (
    "slug",
    "name",
    "description",
    "notify_url",
    "concurrency_key",
    "input_schema",
    "steps",
)
INPUT_SCHEMA_EXAMPLE = {
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string"}},
}
PLACEHOLDER_CALLS = ("shop.quote", "payments.charge")
VERSIONS_NOTE = (
    "Each order runs on the blueprint and the API calls it uses as they were when the order "
    "was created: its pinned version. Saving a new version, here or on one of its API calls, "
    "never changes an order already created; reprocessing can choose the latest version."
)


def steps_example(existing_calls: set[str]) -> list[dict]:
    """A small working flow for a new blueprint: two calls, and an end when either fails.

    It calls the first two API calls there are (the one twice, if there is one).
    """
    first, second = (sorted(existing_calls) * 2)[:2] if existing_calls else PLACEHOLDER_CALLS
    return [
        {"id": "first", "call": first, "on_failed": "reject"},
        {"id": "second", "call": second, "retry": {"max_attempts": 3}, "on_failed": "reject"},
        {"id": "done", "end": "completed"},
        {"id": "reject", "end": "failed", "error": "the order could not be processed"},
    ]


class BlueprintForm(forms.ModelForm):
    input_schema = PrettyJSONField(
        required=False, help_text="JSON Schema every order's payload must satisfy; empty for none."
    )
    steps = PrettyJSONField(help_text="The ordered list of steps (call, choice, parallel, end).")
    save_anyway = forms.BooleanField(
        required=False,
        help_text="Save although failed orders are parked at a step this change removes.",
    )

    class Meta:
        model = Blueprint
        fields = BLUEPRINT_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound or self.instance.pk or self.initial.get("steps"):
            return
        existing_calls = api_call_slugs()
        self.initial["steps"] = steps_example(existing_calls)
        if self.initial.get("input_schema") is None:
            self.initial["input_schema"] = INPUT_SCHEMA_EXAMPLE
        if not existing_calls:
            note = " The example calls {} and {}: add these API calls, or name yours."
            self.fields["steps"].help_text += note.format(*PLACEHOLDER_CALLS)

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
        if data.get("notify_url"):
            definition["notify_url"] = data["notify_url"]
        if data.get("concurrency_key"):
            definition["concurrency_key"] = data["concurrency_key"]
        return definition

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        self.warnings = definition_warnings(self.contract_json())
        try:
            validate_blueprint(self.contract_json(), api_call_slugs=api_call_slugs())
        except DefinitionError as exc:
            add_definition_errors(self, exc.errors, field_for=self.field_for)
            return cleaned
        if self.instance.pk and not cleaned.get("save_anyway"):
            warning = parked_orders_warning(self.instance, cleaned.get("steps"))
            if warning:
                self.add_error("save_anyway", f'{warning} Tick "Save anyway" to save all the same.')
        return cleaned

    @staticmethod
    def field_for(head: str) -> str | None:
        return head if head in BLUEPRINT_FIELDS else None


def parked_orders_warning(blueprint: Blueprint, steps) -> str:
    """What saving `steps` would do to failed orders parked at a step they leave out, or ""."""
    left_out = steps_left_out(blueprint.steps, steps)
    count = parked_order_count(workflow=blueprint.slug, step_ids=left_out) if left_out else 0
    if not count:
        return ""
    names = ", ".join(f'"{step_id}"' for step_id in left_out)
    return (
        f"{_count(count)} failed order(s) are parked at step {names}, which this change removes or "
        "renames: reprocessed from the failed step on the latest version, they would find no "
        "such step (on their pinned version they still run)."
    )


class BlueprintVersionInline(VersionsInline):
    model = BlueprintVersion
    fields = (*VersionsInline.fields[:3], "orders", *VersionsInline.fields[3:])  # after "by"
    readonly_fields = fields
    versions_note = VERSIONS_NOTE

    def get_queryset(self, request):
        self.pinned = None
        return super().get_queryset(request)

    @admin.display(description="orders pinned to it")
    def orders(self, obj):
        if self.pinned is None:  # once per page, for every row
            self.pinned = orders_by_version(workflow=obj.blueprint.slug)
        pinned = self.pinned.get(obj.version)
        if pinned is None or not pinned.total:
            return "none"
        filters = {
            "workflow": obj.blueprint.slug,
            "snapshot__id__in": ",".join(str(pk) for pk in pinned.snapshot_ids),
        }
        url = reverse("admin:orders_order_changelist")
        links = [(f"{url}?{urlencode(filters)}", "all", f"all {_count(pinned.total)}")]
        links += [
            (
                f"{url}?{urlencode({**filters, 'status__exact': status})}",
                status,
                f"{_count(n)} {status}",
            )
            for status, n in pinned.by_status.items()
        ]
        return format_html_join(" ", '<a href="{}" class="sm-pinned sm-pinned-{}">{}</a>', links)


def _count(number: int) -> str:
    return f"{COUNT_CAP:,}+" if number > COUNT_CAP else f"{number:,}"


@admin.register(Blueprint)
class BlueprintAdmin(VersionPages, DefinitionAdmin):
    form = BlueprintForm
    list_display = ("slug", "name", "step_count", "version", "updated_at", "pause_state")
    list_filter = ("updated_at",)
    search_fields = ("slug", "name", "description")
    readonly_fields = ("version", "created_at", "updated_at", "diagram")
    json_fields = ("input_schema", "steps")
    inlines = [BlueprintVersionInline]
    actions = ["pause_blueprints", "resume_blueprints"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "slug",
                    "name",
                    "description",
                    "notify_url",
                    "concurrency_key",
                    ("version", "updated_at"),
                )
            },
        ),
        ("Input", {"fields": ("input_schema",)}),
        (
            "Steps and flow",
            {
                "fields": (("steps", "diagram"),),
                "description": "The diagram follows the steps as you type "
                "(without JavaScript, it shows them as last saved).",
            },
        ),
    )

    class Media:
        js = ("statemanager/blueprint-diagram.js",)

    def save_definition(self, *, definition, user):
        return blueprint_save(definition=definition, user=user)

    versions_note = VERSIONS_NOTE

    def restore_warning(self, obj, definition):
        return parked_orders_warning(obj, definition.get("steps"))

    def render_change_form(self, request, context, *args, **kwargs):
        """The "Save anyway" box, at the top, once a save was stopped by its warning."""
        form = context["adminform"].form
        if "save_anyway" in form.errors or form["save_anyway"].value():
            box = ("Failed orders at changed steps", {"fields": ("save_anyway",)})
            context["adminform"].fieldsets = [box, *context["adminform"].fieldsets]
        context["may_pause"] = self.has_pause_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)

    def has_pause_permission(self, request) -> bool:
        return request.user.has_perm("blueprints.pause_blueprint")

    @admin.action(description="Pause: batches leave their orders due", permissions=["pause"])
    def pause_blueprints(self, request, queryset):
        for blueprint in queryset:
            blueprint_pause(blueprint=blueprint, actor=request.user.get_username())
        return self.paused_or_resumed(request, queryset, "paused")

    @admin.action(description="Resume: batches run their orders again", permissions=["pause"])
    def resume_blueprints(self, request, queryset):
        for blueprint in queryset:
            blueprint_resume(blueprint=blueprint, actor=request.user.get_username())
        return self.paused_or_resumed(request, queryset, "resumed")

    def paused_or_resumed(self, request, queryset, done: str):
        """Say what was done; back to the blueprint's page when its button was used."""
        slugs = ", ".join(blueprint.slug for blueprint in queryset)
        self.message_user(request, f"{done.capitalize()}: {slugs}.")
        if request.POST.get("from_page") and len(queryset) == 1:
            return HttpResponseRedirect(
                reverse("admin:blueprints_blueprint_change", args=[queryset[0].pk])
            )
        return None

    @admin.display(description="paused")
    def pause_state(self, obj):
        if not obj.paused:
            return "—"
        return format_html(
            '<span class="sm-paused" title="since {} by {}">paused</span>',
            to_the_second(obj.paused_at),
            obj.paused_by or "?",
        )

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps) if isinstance(obj.steps, list) else 0

    @admin.display(description="flow diagram")
    def diagram(self, obj):
        saved = obj is not None and obj.pk is not None
        return format_html(
            '<div class="sm-diagram-box" data-diagram-url="{}">{}</div>',
            reverse("admin:blueprints_blueprint_diagram"),
            mark_safe(blueprint_svg(obj.as_definition())) if saved else "Save to see the flow.",
        )

    def get_urls(self):
        urls = [
            path(
                "functions/",
                self.admin_site.admin_view(self.functions_view),
                name="blueprints_blueprint_functions",
            ),
            path(
                "diagram/",
                self.admin_site.admin_view(require_POST(self.diagram_view)),
                name="blueprints_blueprint_diagram",
            ),
        ]
        return urls + super().get_urls()

    def diagram_view(self, request):
        """The flow diagram of the unsaved steps posted, for the editor to redraw live.

        Steps that cannot be drawn yet are a normal moment of typing, not a bad request:
        the answer says why, with status 200.
        """
        if not (self.has_view_or_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        try:
            return JsonResponse({"svg": draft_svg(request.POST.get("steps", ""))})
        except ValueError as exc:
            return JsonResponse({"error": str(exc)})

    def functions_view(self, request):
        """The functions expressions may use, with their docs."""
        if not may_read_definitions(request.user):
            raise PermissionDenied
        functions = registered_functions()
        context = {
            **self.admin_site.each_context(request),
            "title": "Functions for expressions",
            "opts": self.model._meta,
            "project_functions": [(f, doc_html(f.doc)) for f in functions if not f.builtin],
            "builtin_functions": [(f, doc_html(f.doc)) for f in functions if f.builtin],
        }
        return TemplateResponse(request, "admin/blueprints/functions.html", context)
