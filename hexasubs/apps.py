from django.apps import AppConfig


class HexasubsConfig(AppConfig):
    name = "hexasubs"
    verbose_name = "Hexasubs"

    def ready(self):
        from hexasubs import checks  # noqa: F401  (registers the system checks)
