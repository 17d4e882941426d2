"""Editing orders in the roles: Support, who reprocesses and cancels orders, corrects what
an order was given or saved (`orders.edit_order`); editors and integrations do not."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

EDIT_ROLES = {"Support": ("edit_order",)}


def grant_edits(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(global_apps.get_app_config("orders"), apps=apps, verbosity=0, using=using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in EDIT_ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.using(using).filter(
                content_type__app_label="orders", codename__in=codenames
            )
        )


def revoke_edits(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in EDIT_ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("statemanager", "0004_connection_roles"),
        ("orders", "0012_order_edits"),
    ]

    operations = [migrations.RunPython(grant_edits, revoke_edits)]
