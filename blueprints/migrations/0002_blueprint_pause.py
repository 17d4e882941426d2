"""Pausing a blueprint: when and by whom, and the permission to do it.

Support pauses a blueprint during an incident with a partner, so the Support group (and
the Blueprint editors) get `blueprints.pause_blueprint`.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

PAUSE_ROLES = ("Support", "Blueprint editors")


def grant_pause(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(
        global_apps.get_app_config("blueprints"), apps=apps, verbosity=0, using=using
    )
    Group = apps.get_model("auth", "Group")
    permission = (
        apps.get_model("auth", "Permission")
        .objects.using(using)
        .get(content_type__app_label="blueprints", codename="pause_blueprint")
    )
    for name in PAUSE_ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(permission)


def revoke_pause(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="blueprints", codename="pause_blueprint"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("blueprints", "0001_initial"),
        ("statemanager", "0001_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="blueprint",
            options={
                "ordering": ["slug"],
                "permissions": [("pause_blueprint", "Can pause and resume blueprint")],
            },
        ),
        migrations.AddField(
            model_name="blueprint",
            name="paused_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="blueprint",
            name="paused_by",
            field=models.CharField(blank=True, editable=False, max_length=150),
        ),
        migrations.RunPython(grant_pause, revoke_pause),
    ]
