from django.apps import AppConfig


class ApiCallsConfig(AppConfig):
    name = "apicalls"
    verbose_name = "API calls"

    def ready(self) -> None:
        # Connections know nothing of API calls; API calls tell them who names each one.
        from apicalls.services import api_calls_using
        from connections.services import register_usage_finder

        register_usage_finder(api_calls_using)
