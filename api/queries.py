"""Reads for the bot runtime: keyset pages of subscribers and of label changes."""

import base64
import binascii
from datetime import datetime

from django.db.models import Prefetch, prefetch_related_objects
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.utils.translation import gettext as _

from labels.models import Label
from subscribers.models import Subscriber


class BadCursor(ValueError):
    pass


def _labels():
    return Prefetch("labels", queryset=Label.objects.only("name", "title").order_by("name"))


def with_labels(subscribers):
    """Subscribers with their channel and labels: two queries for a whole page."""
    return subscribers.select_related("channel").prefetch_related(_labels())


def fetch_labels(subscriber: Subscriber) -> Subscriber:
    """Load the labels of a subscriber already in hand: one query."""
    prefetch_related_objects([subscriber], _labels())
    return subscriber


def encode_cursor(subscriber: Subscriber, *, by_id: bool) -> str:
    raw = f"id|{subscriber.pk}" if by_id else f"updated|{subscriber.updated_at.isoformat()}|{subscriber.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def after_cursor(subscribers, cursor: str, *, by_id: bool):
    """The subscribers after `cursor`: an index range scan in either order, however deep the page.

    By id for label-filtered lists; else by (updated_at, id), compared as one
    row value so PostgreSQL reads the (updated_at, id) index from that point on
    (the equivalent `a > x OR (a = x AND id > y)` is no index range).
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, *values = raw.split("|")
        if by_id:
            if kind != "id" or len(values) != 1:
                raise ValueError(cursor)
            return subscribers.filter(pk__gt=int(values[0]))
        if kind != "updated" or len(values) != 2:
            raise ValueError(cursor)
        updated_at, pk = datetime.fromisoformat(values[0]), int(values[1])
        if updated_at.tzinfo is None:
            raise ValueError(cursor)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor(_("The cursor is not one this API returned.")) from exc
    return subscribers.filter(TupleGreaterThan(Tuple("updated_at", "pk"), (updated_at, pk)))
