from django.apps import AppConfig


class StateManagerConfig(AppConfig):
    name = "statemanager"
    verbose_name = "State Manager"
