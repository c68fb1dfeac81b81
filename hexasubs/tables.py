"""What the apps' tables render alike."""

from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime


def short_date(value):
    """The day, with the full date and time on hover, in the operator's time zone."""
    local = localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        date_format(local, "DATETIME_FORMAT"),
        date_format(local, "SHORT_DATE_FORMAT"),
    )
