from django.apps import AppConfig


class HexasubsConfig(AppConfig):
    name = "hexasubs"
    verbose_name = "Hexasubs"
