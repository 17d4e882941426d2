"""The roles of contract section 7 as groups: blueprint editors, support, integrations.

Permissions are otherwise created only after all migrations ran (post_migrate), so this
migration creates the ones it needs first.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Blueprint editors": [
        "apicalls.add_apicall",
        "apicalls.change_apicall",
        "apicalls.delete_apicall",
        "apicalls.view_apicall",
        "apicalls.view_apicallversion",
        "blueprints.add_blueprint",
        "blueprints.change_blueprint",
        "blueprints.delete_blueprint",
        "blueprints.view_blueprint",
        "blueprints.view_blueprintversion",
        "blueprints.view_workflowsnapshot",
        "orders.view_order",
        "orders.view_steplog",
    ],
    "Support": [
        "orders.view_order",
        "orders.view_steplog",
        "orders.view_callback",
        "orders.view_batchrun",
        "orders.reprocess_order",
        "apicalls.view_apicall",
        "apicalls.view_apicallversion",
        "blueprints.view_blueprint",
        "blueprints.view_blueprintversion",
        "blueprints.view_workflowsnapshot",
    ],
    "Integrations": [
        "orders.add_order",
    ],
}


def create_roles(apps, schema_editor):
    using = schema_editor.connection.alias
    for label in ("apicalls", "blueprints", "orders"):
        create_permissions(global_apps.get_app_config(label), apps=apps, verbosity=0, using=using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.add(
                Permission.objects.using(using).get(
                    content_type__app_label=app_label, codename=codename
                )
            )


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("apicalls", "0001_initial"),
        ("blueprints", "0001_initial"),
        ("orders", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
