"""Connections in the roles: Blueprint editors, who set up the API calls, add, change and
delete the connections those calls name; Support sees them (never a credential: those
are `{{ secrets.NAME }}` expressions) and runs their "Test" during an incident. Both may
test a connection (`connections.test_connection`); Integrations do neither."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

CONNECTION_ROLES = {
    "Support": ("view_connection", "test_connection"),
    "Blueprint editors": (
        "view_connection",
        "add_connection",
        "change_connection",
        "delete_connection",
        "test_connection",
    ),
}


def grant_connections(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(
        global_apps.get_app_config("connections"), apps=apps, verbosity=0, using=using
    )
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in CONNECTION_ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.using(using).filter(
                content_type__app_label="connections", codename__in=codenames
            )
        )


def revoke_connections(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in CONNECTION_ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="connections", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("statemanager", "0003_host_roles"),
        ("connections", "0002_test_permission"),
    ]

    operations = [migrations.RunPython(grant_connections, revoke_connections)]
