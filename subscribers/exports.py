"""Subscribers written out as CSV, in the format `subscribers.imports` reads back, one batch at a time.

The selection is walked in id order, BATCH subscribers per query plus one query
for their labels, so memory stays flat however many rows are exported, and the
header is written before the first query: a download starts at once.
"""

import csv
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import QuerySet

from subscribers.imports import COLUMNS, LABEL_SEPARATOR, UTF8_BOM, neutralise
from subscribers.models import SubscriberLabel

BATCH = 5_000
_FIELDS = [
    "pk",
    "channel__name",
    "foreign_id",
    "first_name",
    "last_name",
    "gender",
    "locale",
    "timezone",
    "country",
    "created_at",
    "updated_at",
    "last_seen_at",
]


class _Line:
    """The file-like object csv.writer writes to: hands back what it was given."""

    def write(self, value: str) -> str:
        return value


def export_rows(subscribers: QuerySet) -> Iterator[list[str]]:
    """The header, then each subscriber as the cells of one row (formula-looking cells neutralised)."""
    yield list(COLUMNS)
    for batch, labels in _batches(subscribers):
        for pk, channel, foreign_id, first, last, gender, locale, zone, country, created, updated, seen in batch:
            yield [
                neutralise(channel),
                neutralise(foreign_id),
                neutralise(first),
                neutralise(last),
                gender,
                neutralise(locale),
                neutralise(zone),
                str(country or ""),
                LABEL_SEPARATOR.join(labels.get(pk, ())),
                created.isoformat() if created else "",
                updated.isoformat() if updated else "",
                seen.isoformat() if seen else "",
            ]


def _batches(subscribers: QuerySet):
    ordered = subscribers.order_by("pk")
    last = 0
    while True:
        batch = list(ordered.filter(pk__gt=last).values_list(*_FIELDS)[:BATCH])
        if not batch:
            return
        ids = [row[0] for row in batch]
        labels = defaultdict(list)
        assignments = (
            SubscriberLabel.objects.filter(subscriber_id__in=ids)
            .order_by("subscriber_id", "label__name")
            .values_list("subscriber_id", "label__name")
        )
        for subscriber_id, name in assignments:
            labels[subscriber_id].append(name)
        yield batch, labels
        last = ids[-1]


def csv_chunks(subscribers: QuerySet, *, delimiter: str = ",", bom: bool = False) -> Iterator[str]:
    """The CSV file as text, one chunk per batch of rows (the header alone first)."""
    writer = csv.writer(_Line(), delimiter=delimiter, lineterminator="\r\n")
    rows = export_rows(subscribers)
    yield (UTF8_BOM.decode() if bom else "") + writer.writerow(next(rows))
    lines = []
    for row in rows:
        lines.append(writer.writerow(row))
        if len(lines) >= BATCH:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)
