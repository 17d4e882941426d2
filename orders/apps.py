from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


def create_schedule(sender, **kwargs) -> None:
    from orders.tasks import ensure_schedule

    ensure_schedule()


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Project expression functions live in a `functions.py` of any installed app.
        autodiscover_modules("functions")
        post_migrate.connect(create_schedule, sender=self, dispatch_uid="orders-schedule")
