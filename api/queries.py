"""Reads for the bot runtime: the subscriber list with the Subscribers page's filters, keyset-paginated."""

import base64
import binascii
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, prefetch_related_objects
from django.utils.translation import gettext as _

from labels.models import Label
from subscribers.models import Subscriber, SubscriberLabel


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


def filter_by_labels(subscribers, label_ids: list[int], mode: str):
    """`any`: carries one of the labels; `all`: carries each; `none`: carries none of them."""
    if not label_ids:
        return subscribers
    if mode == "all":
        for label_id in label_ids:
            subscribers = subscribers.filter(
                Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label_id=label_id))
            )
        return subscribers
    carries_one = Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label_id__in=label_ids))
    return subscribers.exclude(carries_one) if mode == "none" else subscribers.filter(carries_one)


def filter_by_locale(subscribers, locale: str):
    """`fr` matches fr, fr-FR and fr-CA; `fr-CA` matches only fr-CA."""
    return subscribers.filter(Q(locale__iexact=locale) | Q(locale__istartswith=f"{locale}-"))


def search(subscribers, q: str):
    """First or last name containing `q`, or the exact foreign id."""
    q = q.strip()
    if not q:
        return subscribers
    return subscribers.filter(Q(first_name__icontains=q) | Q(last_name__icontains=q) | Q(foreign_id=q))


def encode_cursor(subscriber: Subscriber) -> str:
    raw = f"{subscriber.updated_at.isoformat()}|{subscriber.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def after_cursor(subscribers, cursor: str):
    """The subscribers after `cursor` in (updated_at, id) order: an index range scan, however deep the page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        updated_at, pk = raw.split("|")
        updated_at, pk = datetime.fromisoformat(updated_at), int(pk)
        if updated_at.tzinfo is None:
            raise ValueError(cursor)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor(_("The cursor is not one this API returned.")) from exc
    return subscribers.filter(Q(updated_at__gt=updated_at) | Q(updated_at=updated_at, pk__gt=pk))
