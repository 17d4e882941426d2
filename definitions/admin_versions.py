"""The versions of an API call or a blueprint in the admin: the list of versions with links,
a page comparing any two of them side by side, and "restore this version", which saves
that version's definition as a new version through the same service (and validation) as
any other save, so a version that no longer validates is refused with its errors."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from core.admin import to_the_second
from definitions.admin import DefinitionVersionInline
from definitions.validation import DefinitionError, definition_warnings
from definitions.versions import definition_text, side_by_side


def versions_url(opts, object_pk, **query) -> str:
    """The comparison page of a definition, e.g. `versions_url(opts, 3, a=1, b=2)`."""
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_versions", args=[object_pk])
    pairs = "&".join(f"{key}={value}" for key, value in query.items())
    return f"{url}?{pairs}" if pairs else url


class VersionsInline(DefinitionVersionInline):
    """Every version, newest first, each with links to compare it and, for editors, to
    restore it; above them, what versions mean for orders (`versions_note`)."""

    template = "admin/definitions/versions_inline.html"
    fields = ("version_label", "saved_at", "saved_by", "definition_json", "compare")
    readonly_fields = fields
    classes = ()
    verbose_name_plural = "versions"
    versions_note = ""

    may_restore = False
    compare_url = ""

    def get_formset(self, request, obj=None, **kwargs):
        opts = self.parent_model._meta
        self.may_restore = request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
        if obj is not None and obj.version > 1:
            self.compare_url = versions_url(opts, obj.pk)
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="version")
    def version_label(self, obj):
        owner = getattr(obj, obj.owner_field)
        if obj.version == owner.version:
            return format_html("{} <strong>current</strong>", obj.version)
        return obj.version

    @admin.display(description="saved")
    def saved_at(self, obj):
        return to_the_second(obj.created_at)

    @admin.display(description="by")
    def saved_by(self, obj):
        return obj.created_by.get_username() if obj.created_by else "—"

    @admin.display(description="compare")
    def compare(self, obj):
        owner = getattr(obj, obj.owner_field)
        opts = self.parent_model._meta
        links = []
        if obj.version > 1:
            url = versions_url(opts, owner.pk, a=obj.version - 1, b=obj.version)
            links.append(format_html('<a href="{}">{}</a>', url, "with the one before"))
        if obj.version != owner.version:
            url = versions_url(opts, owner.pk, a=obj.version, b=owner.version)
            links.append(format_html('<a href="{}">{}</a>', url, "with the current one"))
            if self.may_restore:
                url = versions_url(opts, owner.pk, a=owner.version, b=obj.version)
                links.append(
                    format_html('<a href="{}#restore" class="sm-restore-link">restore…</a>', url)
                )
        return format_html_join(" · ", "{}", ((link,) for link in links)) or "—"


class VersionPages:
    """Admin pages of a DefinitionAdmin's versions: `<id>/versions/?a=1&b=3` compares two
    versions; a POST to `<id>/versions/<n>/restore/` saves version n as a new version."""

    versions_note = ""  # what versions mean for orders, said on the page

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        urls = [
            path(
                "<path:object_id>/versions/",
                self.admin_site.admin_view(self.versions_view),
                name=f"{name}_versions",
            ),
            path(
                "<path:object_id>/versions/<int:version>/restore/",
                self.admin_site.admin_view(require_POST(self.version_restore_view)),
                name=f"{name}_version_restore",
            ),
        ]
        return urls + super().get_urls()

    def restore_warning(self, obj, definition: dict) -> str:
        """Why restoring `definition` needs a second thought (none here), to tick past."""
        return ""

    def versions_view(self, request, object_id):
        obj = self._definition(request, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        a, b = _version_number(request.GET.get("a")), _version_number(request.GET.get("b"))
        b = b or obj.version
        a = a or max(b - 1, 1)
        return self._versions_page(request, obj, a, b)

    def version_restore_view(self, request, object_id, version):
        obj = self._definition(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        row = get_object_or_404(obj.versions, version=version)
        warning = self.restore_warning(obj, row.definition)
        if warning and not request.POST.get("save_anyway"):
            return self._versions_page(request, obj, obj.version, version, not_ticked=True)
        try:
            saved = self.save_definition(definition=row.definition, user=request.user)
        except DefinitionError as exc:
            return self._versions_page(request, obj, obj.version, version, errors=exc.errors)
        if saved.version == obj.version:
            messages.info(request, f"Version {version} is the current definition; nothing saved.")
        else:
            messages.success(request, f"Version {version} restored as version {saved.version}.")
            self.warn(request, definition_warnings(saved.as_definition()))
        change = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]
        )
        return HttpResponseRedirect(change)

    def _definition(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with the id {object_id!r}.")
        return obj

    def _versions_page(self, request, obj, a: int, b: int, *, errors=(), not_ticked=False):
        saved = obj.versions.select_related("created_by")
        versions = list(saved.defer("definition").order_by("-version"))  # for the pickers
        by_number = {row.version: row for row in saved.filter(version__in=[a, b])}
        if a not in by_number or b not in by_number:
            raise Http404("No such version.")
        old, new = by_number[a], by_number[b]
        rows = side_by_side(definition_text(old.definition), definition_text(new.definition))
        may_restore = b != obj.version and self.has_change_permission(request, obj)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Versions of {obj}",
            "opts": self.opts,
            "object": obj,
            "versions": versions,
            "old": old,
            "new": new,
            "rows": rows,
            "added": sum(row.kind in ("added", "changed") for row in rows),
            "removed": sum(row.kind in ("removed", "changed") for row in rows),
            "may_restore": may_restore,
            "restore_warning": self.restore_warning(obj, new.definition) if may_restore else "",
            "not_ticked": not_ticked,
            "errors": errors,
            "versions_note": self.versions_note,
        }
        return TemplateResponse(request, "admin/definitions/versions.html", context)


def _version_number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 10 else None
