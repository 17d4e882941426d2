"""The public JSON Schemas of API calls and blueprints, included at the site root."""

from django.urls import path

from blueprints import views

urlpatterns = [
    path(
        "schemas/api-call.schema.json",
        views.schema_file,
        {"name": "api-call.schema.json"},
        name="api-call-schema",
    ),
    path(
        "schemas/blueprint.schema.json",
        views.schema_file,
        {"name": "blueprint.schema.json"},
        name="blueprint-schema",
    ),
]
