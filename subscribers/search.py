"""The subscriber search's folded form of a name: what the search box matches against.

"Hélène", "HELENE" and "helene" fold to the same text, and so do "Ермакова" and "ermakova" or "Müller"
and "muller": every script is transliterated to ASCII (anyascii), lower-cased, and spaces collapsed.
The folded text is stored in `Subscriber.search_name` by every code path that writes a name (through
`subscribers.actions`), so the search stays an index lookup on both databases.
"""

from anyascii import anyascii

# The stored column's length. Transliteration lengthens a name ("中" is "zhong", an emoji a ":word:"), so a
# long name in such a script folds past it: the search key keeps its beginning, which is what a search finds.
SEARCH_NAME_LENGTH = 511


def fold(text: str) -> str:
    """`text` as the search compares it: ASCII, lower case, single spaces."""
    return " ".join(anyascii(text or "").lower().split())


def search_name(first_name: str, last_name: str) -> str:
    """The stored search key of a subscriber's name: the folded first and last names."""
    return fold(f"{first_name} {last_name}")[:SEARCH_NAME_LENGTH].rstrip()
