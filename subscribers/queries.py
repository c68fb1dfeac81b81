"""Reads for the subscriber pages that need more than a queryset."""

import json
import math
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.datastructures import MultiValueDict

from labels.models import Label
from subscribers.filters import SubscriberFilter
from subscribers.models import LabelChange, Subscriber, SubscriberLabel

# How far the table pages. Paging uses OFFSET, whose cost grows with the offset, so
# we stop at the first REACHABLE_ROWS rows of any sort order: the deepest page then
# reads at most 10,000 index entries, a few milliseconds even at a million rows.
# Operators reach the rest by filtering or by reversing the sort, which every column
# offers; a keyset "next page" would reach further but cannot show page numbers or
# jump, and nobody reads page 40,000 of a list. The same number bounds the exact count.
REACHABLE_ROWS = 10_000


@dataclass(frozen=True)
class Total:
    """How many subscribers match: exact, or an estimate when counting would be slow."""

    value: int
    exact: bool

    @property
    def rounded(self) -> int:
        """The estimate rounded to two significant digits, as it is shown ("about 1.2 million")."""
        if self.exact or self.value < 100:
            return self.value
        scale = 10 ** (int(math.log10(self.value)) - 1)
        return round(self.value / scale) * scale


def subscribers_for_table() -> QuerySet:
    """Subscribers with what the table shows: channel joined, labels prefetched by title."""
    return Subscriber.objects.select_related("channel").prefetch_related(
        Prefetch("labels", queryset=Label.objects.order_by("title", "pk"))
    )


def count_subscribers(queryset: QuerySet, *, filtered: bool) -> Total:
    """Count `queryset` exactly when that is cheap, else estimate it.

    One bounded COUNT reads at most REACHABLE_ROWS + 1 rows. Past that,
    SQLite counts exactly (it has no estimate, and counts 100,000 rows in a
    few milliseconds); PostgreSQL uses its statistics: pg_class.reltuples for
    the whole table, the planner's row estimate for a filtered one.
    """
    queryset = queryset.order_by()
    bounded = queryset[: REACHABLE_ROWS + 1].count()
    if bounded <= REACHABLE_ROWS:
        return Total(bounded, exact=True)
    if connection.vendor != "postgresql":
        return Total(queryset.count(), exact=True)
    estimate = None if filtered else _table_estimate()
    if estimate is None:
        estimate = _planner_estimate(queryset)
    return Total(max(estimate, REACHABLE_ROWS + 1), exact=False)


def _table_estimate() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [Subscriber._meta.db_table])
        row = cursor.fetchone()
    # -1 means the table was never analysed: ask the planner instead.
    return row[0] if row and row[0] >= 0 else None


def _planner_estimate(queryset: QuerySet) -> int:
    sql, params = queryset.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class ReachablePaginator(Paginator):
    """Django's paginator over the first REACHABLE_ROWS rows, given the total up front.

    Taking the total from `count_subscribers` means the paginator never runs
    a COUNT of its own.
    """

    def __init__(self, object_list, per_page, *, total: Total, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.count = min(total.value, REACHABLE_ROWS)

    @staticmethod
    def last_page(total: Total, per_page: int) -> int:
        return max(1, math.ceil(min(total.value, REACHABLE_ROWS) / per_page))


def label_assignments(subscriber: Subscriber) -> QuerySet:
    """The subscriber's labels with when and by whom each was assigned, by label title."""
    return (
        SubscriberLabel.objects.filter(subscriber=subscriber)
        .select_related("label", "assigned_by")
        .order_by("label__title", "label__pk")
    )


def subscribers_matching(selection: dict) -> QuerySet:
    """The subscribers a stored selection names: explicit `ids`, or the table's filter parameters.

    Bulk operations store their selection this way, so the confirmation, the
    change and a background run all select the very same subscribers.
    """
    filterset = SubscriberFilter(
        MultiValueDict({name: list(values) for name, values in selection.get("filters", {}).items()}),
        queryset=Subscriber.objects.all(),
    )
    if not filterset.is_valid():
        raise ValueError("; ".join(filterset.problems()))
    subscribers = filterset.qs.order_by()
    if "ids" in selection:
        subscribers = subscribers.filter(pk__in=selection["ids"])
    return subscribers


@dataclass(frozen=True)
class LabelChangePreview:
    """What a bulk label change would do: how many subscribers are selected, how many would change."""

    selected: int
    changing: int

    @property
    def unchanged(self) -> int:
        return self.selected - self.changing


def preview_label_change(subscribers: QuerySet, labels: list[Label], kind: str) -> LabelChangePreview:
    """Count, in one query, the selected subscribers and those whose labels the change would touch.

    Adding touches those lacking at least one of the labels; removing, those
    carrying at least one. Both are `Exists` tests, as the change itself uses.
    """
    label_ids = [label.pk for label in labels]
    if kind == "add":
        touched = Exists(
            Label.objects.filter(pk__in=label_ids).exclude(
                Exists(SubscriberLabel.objects.filter(label=OuterRef("pk"), subscriber=OuterRef(OuterRef("pk"))))
            )
        )
    else:
        touched = Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label__in=label_ids))
    counts = subscribers.order_by().aggregate(selected=Count("pk"), changing=Count("pk", filter=Q(touched)))
    return LabelChangePreview(counts["selected"], counts["changing"])


def label_history(subscriber: Subscriber) -> QuerySet:
    """The subscriber's label changes, newest first, with the label and the person who made each."""
    return (
        LabelChange.objects.filter(subscriber=subscriber)
        .select_related("label", "changed_by")
        .order_by("-changed_at", "-pk")
    )
