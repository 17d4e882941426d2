from django.apps import AppConfig


class BlueprintsConfig(AppConfig):
    name = "blueprints"
    verbose_name = "Blueprints"

    def ready(self) -> None:
        # API calls know nothing of blueprints; blueprints tell them who uses each one.
        from apicalls.services import register_usage_finder
        from blueprints.services import blueprints_using

        register_usage_finder(blueprints_using)
