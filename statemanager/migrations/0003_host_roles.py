"""Outbound hosts in the roles: Support sees hosts and pauses, resumes and closes their
circuit breakers during an incident (`hosts.pause_host`); Blueprint editors, who set up
the API calls, also add and change hosts and their limits, and may pause them as they
may pause blueprints."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

HOST_ROLES = {
    "Support": ("view_host", "pause_host"),
    "Blueprint editors": ("view_host", "add_host", "change_host", "pause_host"),
}


def grant_hosts(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(global_apps.get_app_config("hosts"), apps=apps, verbosity=0, using=using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in HOST_ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.using(using).filter(
                content_type__app_label="hosts", codename__in=codenames
            )
        )


def revoke_hosts(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in HOST_ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="hosts", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("statemanager", "0002_alert_roles"),
        ("hosts", "0001_hosts"),
    ]

    operations = [migrations.RunPython(grant_hosts, revoke_hosts)]
