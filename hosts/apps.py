from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "hosts"
    verbose_name = "Outbound hosts"

    def ready(self) -> None:
        # A host saved here is seen at once by this process's gate, within a second by others.
        from django.db.models.signals import post_delete, post_save

        from hosts.models import Host
        from hosts.rules import forget_rules

        post_save.connect(forget_rules, sender=Host, dispatch_uid="hosts.forget_rules.save")
        post_delete.connect(forget_rules, sender=Host, dispatch_uid="hosts.forget_rules.delete")
