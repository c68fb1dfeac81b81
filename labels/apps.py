from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabelsConfig(AppConfig):
    name = "labels"
    # The admin shows "Label management > Labels", not "Labels > Labels".
    verbose_name = _("Label management")
