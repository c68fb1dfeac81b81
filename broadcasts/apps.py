from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BroadcastsConfig(AppConfig):
    name = "broadcasts"
    verbose_name = _("Broadcasts")

    def ready(self):
        from broadcasts import checks, queries  # noqa: F401 (checks: registers the system checks)
        from subscribers.queries import SELECTION_SOURCES

        # "Label these recipients": a bulk label change selects a broadcast's recipients by outcome.
        SELECTION_SOURCES["recipients"] = queries.recipient_ids
