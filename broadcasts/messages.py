"""A broadcast's text made personal: tokens with fallbacks, and the variant for the subscriber's locale.

Plain text only. The one syntax is `{first_name}`, `{last_name}`, `{full_name}`,
each with an optional fallback used when the subscriber's value is empty
(`{first_name|there}`); `{{` and `}}` write a brace. Anything else between
braces, or a brace alone, is an error the form shows: nothing is ever left
blank silently, and there is no template language to abuse.
"""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

TOKENS = ("first_name", "last_name", "full_name")
FALLBACK_MAX = 100
_PIECE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_TOKEN = re.compile(r"^\s*([a-z_]+)\s*(?:\|(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Token:
    name: str
    fallback: str


def parse(text: str) -> tuple[list[str | Token], list[str]]:
    """The text as literal pieces and tokens, and the problems found (empty when it is valid)."""
    parts: list[str | Token] = []
    problems: list[str] = []
    position = 0
    for match in _PIECE.finditer(text):
        parts.append(text[position : match.start()])
        position = match.end()
        piece = match.group(0)
        if piece in ("{{", "}}"):
            parts.append(piece[0])
        elif piece in ("{", "}"):
            problems.append(
                _("A “%(brace)s” stands alone (character %(at)s): write %(double)s for a brace in the text.")
                % {"brace": piece, "at": match.start() + 1, "double": piece * 2}
            )
        else:
            token = _TOKEN.match(match.group(1))
            if token is None or token.group(1) not in TOKENS:
                problems.append(
                    _("“%(token)s” is not a token: use %(tokens)s, with a fallback if you like: {first_name|there}.")
                    % {"token": piece, "tokens": ", ".join(f"{{{name}}}" for name in TOKENS)}
                )
                continue
            fallback = token.group(2) or ""
            if len(fallback) > FALLBACK_MAX:
                problems.append(
                    _("The fallback of %(token)s is longer than %(max)s characters.")
                    % {"token": f"{{{token.group(1)}}}", "max": FALLBACK_MAX}
                )
            parts.append(Token(token.group(1), fallback.strip()))
    parts.append(text[position:])
    return [part for part in parts if part != ""], problems


def personalise(text: str, subscriber) -> str:
    """The text with the subscriber's values in its tokens (the fallback where a value is empty)."""
    parts, problems = parse(text)
    if problems:  # stored texts were validated; this keeps a damaged one from going out half-filled
        raise ValueError(" ".join(problems))
    values = {
        "first_name": subscriber.first_name.strip(),
        "last_name": subscriber.last_name.strip(),
        "full_name": f"{subscriber.first_name} {subscriber.last_name}".strip(),
    }
    return "".join(part if isinstance(part, str) else values[part.name] or part.fallback for part in parts)


def variant_for(locale: str, default: str, variants: dict[str, str]) -> tuple[str, str]:
    """(variant key or "", text) for a subscriber's locale: exact locale, then its language, then the default."""
    locale = (locale or "").replace("_", "-").lower()
    by_key = {key.lower(): (key, text) for key, text in variants.items()}
    if locale in by_key:
        return by_key[locale]
    language = locale.partition("-")[0]
    if language in by_key:
        return by_key[language]
    return "", default


def message_for(broadcast, subscriber) -> str:
    """What this subscriber receives: their locale's variant, personalised."""
    _key, text = variant_for(subscriber.locale, broadcast.text, broadcast.variants)
    return personalise(text, subscriber)
