"""The admin pieces API calls and blueprints share: the JSON editor, errors at their fields,
the read-only version rows and the save through a service."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from definitions.storable import escape_lone_surrogates
from definitions.validation import definition_warnings

# CodeMirror (vendored, offline) and the script that puts it on every JSON field.
EDITOR_JS = (
    "statemanager/vendor/codemirror/lib/codemirror.js",
    "statemanager/vendor/codemirror/mode/javascript/javascript.js",
    "statemanager/vendor/codemirror/addon/edit/matchbrackets.js",
    "statemanager/json-editor.js",
)
EDITOR_CSS = ("statemanager/vendor/codemirror/lib/codemirror.css", "statemanager/json-editor.css")


class JSONEditor(forms.Textarea):
    """A monospace textarea sized to its content, for the contract's JSON.

    Its script turns it into a highlighting editor with line numbers that marks errors at
    their line; the textarea stays what the form posts, and the editor without JavaScript.
    """

    class Media:
        css = {"all": EDITOR_CSS}
        js = EDITOR_JS

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


def to_the_second(value, empty: str = "") -> str:
    """A time in the admin's time zone, to the second: "2026-01-05 10:00:00"."""
    return localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else empty


def json_block(value, *, highlight: bool = False) -> str:
    """A read-only, indented JSON value for admin pages; `highlight` asks the editor's
    script to show it highlighted with line numbers."""
    if value in (None, "", {}, []):
        return format_html('<span class="sm-muted">{}</span>', json.dumps(value))
    css = "sm-json sm-json-view" if highlight else "sm-json"
    return format_html('<pre class="{}">{}</pre>', css, json_text(value))


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


_CODE_SPAN = re.compile(r"``(.+?)``|`([^`]+)`", re.DOTALL)


def doc_html(text: str) -> str:
    """A docstring for a page: its `code` (and ``code``) spans as <code>, its lines kept."""
    parts, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(format_html("<code>{}</code>", match.group(1) or match.group(2)))
        last = match.end()
    parts.append(escape(text[last:]))
    return mark_safe("".join(parts).replace("\n", "<br>"))


def may_read_definitions(user) -> bool:
    """Anyone who may see blueprints or API calls may read the function list."""
    return user.is_active and (
        user.has_module_perms("blueprints") or user.has_module_perms("apicalls")
    )


class DefinitionVersionInline(admin.TabularInline):
    """Past versions, read-only; visible to whoever may see the definition itself."""

    extra = 0
    can_delete = False
    fields = ("version", "created_at", "created_by", "definition_json")
    readonly_fields = fields
    ordering = ("-version",)
    classes = ("collapse",)
    verbose_name_plural = "past versions"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description="definition")
    def definition_json(self, obj):
        return format_html(
            "<details><summary>JSON</summary>{}</details>", json_block(obj.definition)
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        opts = self.parent_model._meta
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or (
            request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        )


class DefinitionAdmin(admin.ModelAdmin):
    """What API calls and blueprints share: slug fixed once saved, saves through a service,
    JSON in the editor, and JSON indented for those who may only read it."""

    save_on_top = True
    json_fields: tuple[str, ...] = ()  # the model's JSON fields

    class Media:
        css = {"all": EDITOR_CSS}
        js = EDITOR_JS

    def get_fieldsets(self, request, obj=None):
        """For read-only users, each JSON field indented instead of Django's one-line JSON."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        shown = {name: self.readable_json(name) for name in self.json_fields}
        return [
            (title, {**options, "fields": [_swapped(line, shown) for line in options["fields"]]})
            for title, options in fieldsets
        ]

    def readable_json(self, name: str) -> Callable:
        """A read-only field showing the JSON field `name` indented, under the same name."""

        def show(obj):
            return json_block(getattr(obj, name), highlight=True)

        show.__name__ = name  # the row keeps its `field-<name>` class
        show.short_description = self.model._meta.get_field(name).verbose_name
        return show

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and self.has_change_permission(request, obj):
            fields.append("slug")
        return fields

    def save_model(self, request, obj, form, change):
        saved = self.save_definition(definition=form.contract_json(), user=request.user)
        obj.pk = saved.pk
        obj.version = saved.version
        obj.created_at = saved.created_at
        obj.updated_at = saved.updated_at

    def save_definition(self, *, definition: dict, user):
        raise NotImplementedError

    # A secret not set on this machine is a warning (contract section 3): after the save,
    # and beside the errors while a save is refused.

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        self.warn(request, definition_warnings(obj.as_definition()))
        return response

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        self.warn(request, definition_warnings(obj.as_definition()))
        return response

    def render_change_form(self, request, context, *args, **kwargs):
        form = context["adminform"].form
        if form.is_bound and form.errors:
            self.warn(request, getattr(form, "warnings", ()))  # what the form's clean() found
        return super().render_change_form(request, context, *args, **kwargs)

    def warn(self, request, warnings: Iterable[str]) -> None:
        """Each "<place>: <reason>" as a message, as written (places are lower case)."""
        for warning in warnings:
            messages.warning(request, format_html('<span class="sm-place">{}</span>', warning))


def _swapped(line, shown: dict):
    """A fieldset line (a name or a tuple of names) with names swapped as `shown` says."""
    if isinstance(line, list | tuple):
        return tuple(shown.get(name, name) for name in line)
    return shown.get(line, line)
