"""Template filters for what several pages show alike."""

import re

from django import template

from hexasubs import quotes

register = template.Library()

_HOURS = re.compile(r"^[+-]?\d{1,2}(\.\d{1,2})?$")


@register.filter
def quoted(titles):
    """`{{ labels|quoted }}`: “VIP”, “Newsletter” in English, « VIP », « Newsletter » in French."""
    return quotes.quoted(titles)


@register.filter
def utc_offset(value):
    """A time zone as channels report it: hours such as "-5" or "5.5" become "UTC\u221205:00" (with a minus
    sign) or "UTC+05:30"; a zone name such as Europe/Paris stays as it is."""
    if not value or not _HOURS.match(value):
        return value
    minutes = round(float(value) * 60)
    sign = "+" if minutes >= 0 else "\u2212"  # a minus sign, not a hyphen
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"
