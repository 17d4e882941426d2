"""The admin pieces API calls, blueprints and connections share: errors at their fields,
the read-only version rows, the save through a service and who uses a definition."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.db import models
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.admin import EDITOR_CSS, EDITOR_JS, json_block
from definitions.validation import definition_warnings

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


class ObjectDefinitionForm(forms.ModelForm):
    """A definition edited as a few plain fields and one JSON object holding the rest of
    its contract JSON (an API call's `definition`, a connection's `settings`), checked as a
    whole by its validator, each error shown at its field."""

    key_field = "slug"  # read-only once saved: then the instance's
    plain_fields: tuple[str, ...] = ("slug", "name")
    json_field = "definition"

    def contract_json(self) -> dict:
        """The contract JSON of what was entered."""
        data, key = self.cleaned_data, self.key_field
        plain = {name: data.get(name, "") for name in self.plain_fields}
        plain[key] = data.get(key) or (getattr(self.instance, key) if self.instance.pk else "")
        body = data.get(self.json_field)
        return {**plain, **(body if isinstance(body, dict) else {})}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if not isinstance(cleaned.get(self.json_field), dict):
            self.add_error(self.json_field, "must be an object")
            return cleaned
        definition = self.contract_json()
        self.warnings = self.warnings_of(definition)
        add_definition_errors(self, self.errors_of(definition), field_for=self.field_for)
        return cleaned

    def field_for(self, head: str) -> str:
        return head if head in self.plain_fields else self.json_field

    def errors_of(self, definition: dict) -> list[str]:
        raise NotImplementedError

    def warnings_of(self, definition: dict) -> list[str]:
        return definition_warnings(definition)


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
    """What API calls, blueprints and connections share: slug (or name) fixed once saved,
    saves through a service, JSON in the editor, and JSON indented for those who may only
    read it."""

    save_on_top = True
    json_fields: tuple[str, ...] = ()  # the model's JSON fields
    key_field = "slug"  # what names one, in URLs and in the definitions that use it

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
            fields.append(self.key_field)
        return fields

    def save_model(self, request, obj, form, change):
        saved = self.save_definition(definition=form.contract_json(), user=request.user)
        for name in ("pk", "version", "created_at", "updated_at"):
            if hasattr(saved, name):
                setattr(obj, name, getattr(saved, name))

    def save_definition(self, *, definition: dict, user):
        raise NotImplementedError

    # A secret not set on this machine is a warning (contract section 3): after the save,
    # and beside the errors while a save is refused.

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        self.warn(request, self.warnings(obj.as_definition()))
        return response

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        self.warn(request, self.warnings(obj.as_definition()))
        return response

    def warnings(self, definition: dict) -> list[str]:
        return definition_warnings(definition)

    def render_change_form(self, request, context, *args, **kwargs):
        form = context["adminform"].form
        if form.is_bound and form.errors:
            self.warn(request, getattr(form, "warnings", ()))  # what the form's clean() found
        return super().render_change_form(request, context, *args, **kwargs)

    def warn(self, request, warnings: Iterable[str]) -> None:
        """Each "<place>: <reason>" as a message, as written (places are lower case)."""
        for warning in warnings:
            messages.warning(request, format_html('<span class="sm-place">{}</span>', warning))


class UsedByAdmin(admin.ModelAdmin):
    """A definition that others use (an API call by blueprints, a connection by API calls):
    its users linked on its page and list, and its delete protected while it has any, as
    its delete service refuses it."""

    nobody = "nothing"  # what `used_by` says when nothing uses it

    def users_of(self, obj) -> list[models.Model]:
        raise NotImplementedError

    @admin.display(description="used by")
    def used_by(self, obj):
        users = self.users_of(obj) if obj and obj.pk else []
        if not users:
            return self.nobody
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse(admin_urlname(user._meta, "change"), args=[user.pk]), user)
                for user in users
            ),
        )

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for obj in objs:
            protected += [
                f"{user._meta.verbose_name.capitalize()}: {user} (uses {obj})"
                for user in self.users_of(obj)
            ]
        return deleted, counts, perms_needed, protected

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def _swapped(line, shown: dict):
    """A fieldset line (a name or a tuple of names) with names swapped as `shown` says."""
    if isinstance(line, list | tuple):
        return tuple(shown.get(name, name) for name in line)
    return shown.get(line, line)
