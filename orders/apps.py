from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Project expression functions live in a `functions.py` of any installed app.
        autodiscover_modules("functions")

        from orders.tasks import ensure_schedule  # needs the models, loaded by now

        def create_schedule(sender, **kwargs) -> None:
            ensure_schedule()

        post_migrate.connect(
            create_schedule, sender=self, weak=False, dispatch_uid="orders-schedule"
        )
