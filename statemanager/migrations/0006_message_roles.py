"""Messages from partners in the roles: Integrations post them (`orders.post_message`,
beside the webhook); Blueprint editors add, change and delete the message sources that
partners post their own webhooks to, and see the messages; Support sees the sources, the
messages and the waits (resolving a wait by hand needs `orders.reprocess_order`, which
Support has, as for callbacks)."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

MESSAGE_ROLES = {
    "Integrations": ("post_message",),
    "Support": ("view_messagesource", "view_message", "view_messagewait"),
    "Blueprint editors": (
        "view_messagesource",
        "add_messagesource",
        "change_messagesource",
        "delete_messagesource",
        "view_message",
    ),
}


def grant_messages(apps, schema_editor):
    using = schema_editor.connection.alias
    create_permissions(global_apps.get_app_config("orders"), apps=apps, verbosity=0, using=using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in MESSAGE_ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.using(using).filter(
                content_type__app_label="orders", codename__in=codenames
            )
        )


def revoke_messages(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in MESSAGE_ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("statemanager", "0005_edit_roles"),
        ("orders", "0015_messages"),
    ]

    operations = [migrations.RunPython(grant_messages, revoke_messages)]
