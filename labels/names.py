"""How a label's title is written and its machine name made from it.

Integrations and conversation flows refer to labels by name, so the rules live
here once and every entry point (the app's dialog, the admin, the API, imports)
calls these functions.
"""

import re
import unicodedata

from anyascii import anyascii

NAME_MAX_LENGTH = 64
NAME_PATTERN = r"^[a-z0-9_]{1,64}$"
FALLBACK_NAME = "label"

_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")

# Characters that show nothing but would make two titles differ: what a title may never contain once
# normalised. The labels table has the same list as a CHECK constraint (TITLE_REFUSED_PATTERN).
# Controls and the format characters people can type or paste: soft hyphen, Arabic letter mark,
# Mongolian vowel separator, zero-width space and non-joiner, left-to-right and right-to-left marks,
# line and paragraph separators, bidi embeddings, overrides and isolates, word joiner and invisible
# operators, byte order mark, interlinear annotations. Also no blank title, and spaces only one at a
# time between words. (The zero-width joiner may stay inside an emoji sequence: see `normalise_title`.)
TITLE_REFUSED_PATTERN = (
    r"[\u0001-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b\u200c\u200e\u200f\u2028-\u202e"
    r"\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]|^$|^ | $|  "
)
ZERO_WIDTH_JOINER = "\u200d"
# Letters and marks that look like nothing: Hangul fillers, the combining grapheme joiner, the braille blank.
_BLANK_LOOKING = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u034f", "\u2800"}


def _is_variation_selector(char: str) -> bool:
    code = ord(char)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0x180B <= code <= 0x180F


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char) in {"So", "Sk"}


def _shows(text: str, index: int) -> bool:
    """Whether text[index] is kept: not invisible, or part of an emoji sequence ("❤️", "👩‍💻")."""
    char = text[index]
    if _is_variation_selector(char):
        return index > 0 and _is_symbol(text[index - 1])
    if char == ZERO_WIDTH_JOINER:
        before = text[index - 2] if index > 1 and _is_variation_selector(text[index - 1]) else text[index - 1 : index]
        after = text[index + 1 : index + 2]
        return bool(before and after) and _is_symbol(before) and _is_symbol(after)
    return unicodedata.category(char) not in {"Cc", "Cf", "Cs"} and char not in _BLANK_LOOKING


def normalise_title(title: str) -> str:
    """A title as stored: NFC, without invisible or control characters, single spaces between words.

    Two titles that look the same are then equal (up to case, which the uniqueness ignores), so
    "VIP" with a zero-width space or a right-to-left mark inside cannot sit beside "VIP".
    """
    text = unicodedata.normalize("NFC", title or "")
    kept = "".join(" " if char.isspace() else char for index, char in enumerate(text) if _shows(text, index))
    return unicodedata.normalize("NFC", " ".join(kept.split()))


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
