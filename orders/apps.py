from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Project expression functions live in a `functions.py` of any installed app.
        autodiscover_modules("functions")

        from connections.services import register_tester
        from hosts.signals import host_resumed
        from orders import hosts_held
        from orders.engine.probes import probe_connection
        from orders.tasks import ensure_schedule  # needs the models, loaded by now

        # The connections' "Test" sends through the engine's guarded transport.
        register_tester(probe_connection)
        # A resumed host's held orders are due at once.
        host_resumed.connect(hosts_held.on_host_resumed, dispatch_uid="orders.host_resumed")

        def create_schedule(sender, **kwargs) -> None:
            ensure_schedule()

        post_migrate.connect(
            create_schedule, sender=self, weak=False, dispatch_uid="orders-schedule"
        )
