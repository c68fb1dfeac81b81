"""Validators for what channels report about a person."""

import re
import zoneinfo
from functools import cache

import langcodes
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# ASCII digits only, and the whole value (fullmatch): `\d` takes any script's digits and `$` a final newline.
_UTC_OFFSET = re.compile(r"[+-]?[0-9]{1,2}(\.[0-9]{1,2})?")


def validate_locale(value: str) -> None:
    """Accept a BCP 47 language tag such as `en-US`, `fr` or `zh-Hant-TW`."""
    if "_" in value or not langcodes.tag_is_valid(value):
        raise ValidationError(
            _("“%(value)s” is not a BCP 47 language tag such as en-US or fr."),
            code="invalid_locale",
            params={"value": value},
        )


@cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    """Accept a UTC offset in hours (Messenger sends 1 or -5.5) or an IANA zone name."""
    if _UTC_OFFSET.fullmatch(value) and -12 <= float(value) <= 14:
        return
    if value in _time_zone_names():
        return
    raise ValidationError(
        _("“%(value)s” is neither a UTC offset in hours (such as -5.5) nor a time zone name (such as Europe/Paris)."),
        code="invalid_timezone",
        params={"value": value},
    )
