"""How a label's machine name is made from its title.

Integrations and conversation flows refer to labels by name, so the rules live
here once and every entry point (the app's dialog, the admin, the API, imports)
calls these two functions.
"""

import re

from anyascii import anyascii

NAME_MAX_LENGTH = 64
NAME_PATTERN = r"^[a-z0-9_]{1,64}$"
FALLBACK_NAME = "label"

_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def name_from_title(title: str) -> str:
    """Turn a title into a name: ASCII, lowercase, runs of other characters as one `_`.

    "Intéressé par les produits" gives "interesse_par_les_produits", "Клиенты"
    gives "klienty". A title with nothing usable in it gives "label".
    """
    ascii_title = anyascii(title or "").lower()
    name = _NOT_NAME_CHARS.sub("_", ascii_title).strip("_")
    name = name[:NAME_MAX_LENGTH].rstrip("_")
    return name or FALLBACK_NAME


def unique_name(name: str, taken: set[str] | frozenset[str]) -> str:
    """Return `name`, or `name_2`, `name_3`... whichever is not in `taken`.

    The base is shortened when needed so the result stays within 64 characters.
    """
    if name not in taken:
        return name
    counter = 2
    while True:
        suffix = f"_{counter}"
        candidate = name[: NAME_MAX_LENGTH - len(suffix)].rstrip("_") + suffix
        if candidate not in taken:
            return candidate
        counter += 1
