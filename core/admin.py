"""The admin pieces every app shares: the JSON editor and field, read-only JSON blocks, times
to the second, and docstrings shown as pages."""

from __future__ import annotations

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from core.storable import escape_lone_surrogates

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
