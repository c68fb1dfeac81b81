"""Reads for the bot runtime: keyset pages of subscribers and of label changes."""

from datetime import datetime

from django.db.models import Prefetch
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.utils.translation import gettext as _

from hexasubs import cursors
from labels.models import Label
from subscribers.models import Subscriber


class BadCursor(ValueError):
    pass


def _labels():
    return Prefetch("labels", queryset=Label.objects.only("name", "title").order_by("name"))


def with_labels(subscribers):
    """Subscribers with their channel and labels: two queries for a whole page."""
    return subscribers.select_related("channel").prefetch_related(_labels())


def encode_cursor(subscriber: Subscriber, *, by_id: bool) -> str:
    if by_id:
        return cursors.encode("id", subscriber.pk)
    return cursors.encode("updated", subscriber.updated_at.isoformat(), subscriber.pk)


def after_cursor(subscribers, cursor: str):
    """The subscribers after `cursor` in (updated_at, id) order: an index range scan however deep the page.

    Compared as one row value, so PostgreSQL reads the (updated_at, id) index
    from that point on (the equivalent `a > x OR (a = x AND id > y)` is no
    index range). Label-filtered lists go by id: see `id_after`.
    """
    updated_at, pk = _decode(cursor, "updated", 2)
    try:
        updated_at = datetime.fromisoformat(updated_at)
        if updated_at.tzinfo is None:
            raise ValueError(cursor)
        return subscribers.filter(TupleGreaterThan(Tuple("updated_at", "pk"), (updated_at, int(pk))))
    except ValueError as exc:
        raise BadCursor(_("The cursor is not one this API returned.")) from exc


def id_after(cursor: str) -> int:
    """The id a label-filtered list goes on after (the filter repeats it inside its label subqueries)."""
    (pk,) = _decode(cursor, "id", 1)
    try:
        return int(pk)
    except ValueError as exc:
        raise BadCursor(_("The cursor is not one this API returned.")) from exc


def _decode(cursor: str, kind: str, count: int) -> list[str]:
    try:
        found, *values = cursors.decode(cursor)
    except ValueError as exc:
        raise BadCursor(_("The cursor is not one this API returned.")) from exc
    if found != kind or len(values) != count:
        raise BadCursor(_("The cursor is not one this API returned."))
    return values
