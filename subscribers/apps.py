from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SubscribersConfig(AppConfig):
    name = "subscribers"
    # The admin shows "Subscriber management > Subscribers", not "Subscribers > Subscribers".
    verbose_name = _("Subscriber management")

    def ready(self):
        from subscribers import receivers  # noqa: F401  (connects the signal receivers)
