from django.apps import AppConfig

from core import tracing


class StateManagerConfig(AppConfig):
    name = "statemanager"
    verbose_name = "State Manager"

    def ready(self):
        tracing.configure()  # OpenTelemetry, while OTEL_EXPORTER_OTLP_ENDPOINT is set
