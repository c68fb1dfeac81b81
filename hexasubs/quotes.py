"""Titles quoted inside sentences as each language does: “VIP” in English, « VIP » in French."""

from django.utils.translation import pgettext


def quoted(titles) -> str:
    """Each of `titles` (strings, or objects shown by their str()) in quotation marks, joined with commas."""
    return ", ".join(pgettext("a title quoted in a sentence", "“%(title)s”") % {"title": title} for title in titles)
