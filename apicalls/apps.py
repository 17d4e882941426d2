from django.apps import AppConfig


class ApiCallsConfig(AppConfig):
    name = "apicalls"
    verbose_name = "API calls"
