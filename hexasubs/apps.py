from django.apps import AppConfig


class HexasubsConfig(AppConfig):
    name = "hexasubs"
    verbose_name = "Hexasubs"

    def ready(self):
        # Registers the system checks; connects what forgets the cached permissions.
        from hexasubs import checks, permissions  # noqa: F401
