"""Opaque keyset cursors: a few text parts joined by "|" and base64-encoded, which clients pass back untouched.

The API's subscriber lists and the label-changes feed both page with them; each reader checks the parts it gets.
"""

import base64


def encode(*parts) -> str:
    raw = "|".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str) -> list[str]:
    """The parts of a cursor `encode` made; ValueError on anything else."""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
