"""Connections in the admin: name and kind, the kind's keys as JSON in the editor, checked
by the one validator with each error at its field, the API calls that name each one, and
the "Test" button that fetches a token or signs a sample request and shows the outcome."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from connections.models import Connection
from connections.services import (
    TEST_PERMISSION,
    connection_delete,
    connection_save,
    connection_users,
    test_connection,
)
from connections.validation import connection_errors, connection_warnings
from core.admin import PrettyJSONField, json_block
from definitions.admin import DefinitionAdmin, ObjectDefinitionForm, UsedByAdmin

SETTINGS_EXAMPLE = {
    "token_url": "{{ secrets.PARTNER_URL }}/oauth2/token",
    "client_id": "{{ secrets.PARTNER_CLIENT_ID }}",
    "client_secret": "{{ secrets.PARTNER_CLIENT_SECRET }}",
    "scope": "",
    "client_auth": "basic",
}
SETTINGS_HELP = (
    "The keys of the kind (api_key: in, param, value; basic: username, password; bearer: "
    "token; oauth2_client_credentials: token_url, client_id, client_secret, scope, audience, "
    "client_auth; hmac: secret, header, message, algorithm, encoding, timestamp_header; "
    "aws_sigv4: access_key_id, secret_access_key, session_token, region, service), and for "
    "any kind client_certificate {cert, key} and ca_bundle. Credentials only as "
    "{{ secrets.NAME }}."
)


class ConnectionForm(ObjectDefinitionForm):
    settings = PrettyJSONField(initial=SETTINGS_EXAMPLE, help_text=SETTINGS_HELP)
    key_field = "name"
    plain_fields = ("name", "kind")
    json_field = "settings"

    class Meta:
        model = Connection
        fields = ("name", "kind", "settings")

    def errors_of(self, definition: dict) -> list[str]:
        return connection_errors(definition)

    def warnings_of(self, definition: dict) -> list[str]:
        return connection_warnings(definition)


@admin.register(Connection)
class ConnectionAdmin(UsedByAdmin, DefinitionAdmin):
    form = ConnectionForm
    list_display = ("name", "kind", "used_by", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at", "used_by")
    json_fields = ("settings",)
    key_field = "name"  # API calls name it: renaming would break them
    nobody = "no API call"
    fieldsets = (
        (None, {"fields": ("name", "kind", ("created_at", "updated_at"), "used_by")}),
        ("Settings", {"fields": ("settings",)}),
    )

    def save_definition(self, *, definition, user):
        return connection_save(definition=definition, user=user)

    def warnings(self, definition: dict) -> list[str]:
        return connection_warnings(definition)

    def users_of(self, obj):
        return connection_users(obj.name)

    def delete_model(self, request, obj):
        connection_delete(connection=obj, user=request.user)

    def has_test_permission(self, request) -> bool:
        return request.user.has_perm(TEST_PERMISSION)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["may_test"] = obj is not None and self.has_test_permission(request)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="connections_connection_test",
            )
        ]
        return urls + super().get_urls()

    def test_view(self, request, object_id):
        """Run the connection's test (POST only: it sends a request) and show its outcome."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = get_object_or_404(Connection, pk=object_id)
        if not self.has_test_permission(request):
            raise PermissionDenied
        outcome = test_connection(connection)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Test of {connection.name}",
            "opts": self.model._meta,
            "original": connection,
            "outcome": outcome,
            "details": json_block(outcome.details),
        }
        return TemplateResponse(request, "admin/connections/connection/test.html", context)
