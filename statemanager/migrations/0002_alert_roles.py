"""Alert rules are support's: the Support group may view, add and change them (and send a
test alert, which needs the change permission)."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

ALERT_PERMISSIONS = ("view_alertrule", "add_alertrule", "change_alertrule")


def grant_alerts(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(global_apps.get_app_config("orders"), apps=apps, verbosity=0, using=using)
    group, _ = apps.get_model("auth", "Group").objects.using(using).get_or_create(name="Support")
    permissions = (
        apps.get_model("auth", "Permission")
        .objects.using(using)
        .filter(content_type__app_label="orders", codename__in=ALERT_PERMISSIONS)
    )
    group.permissions.add(*permissions)


def revoke_alerts(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    support = Group.objects.filter(name="Support").first()
    if support is not None:
        support.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="orders", codename__in=ALERT_PERMISSIONS
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("statemanager", "0001_roles"),
        ("orders", "0010_alert_rules"),
    ]

    operations = [migrations.RunPython(grant_alerts, revoke_alerts)]
