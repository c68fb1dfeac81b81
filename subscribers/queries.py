"""Reads for the subscriber pages that need more than a queryset."""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from psycopg.errors import QueryCanceled

from hexasubs import cursors
from labels.models import Label
from labels.queries import exclusive_groups_of
from subscribers.filters import SubscriberFilter
from subscribers.models import (
    LabelChange,
    LabelChangeAction,
    LabelOperation,
    LabelOperationMember,
    LabelSource,
    Subscriber,
    SubscriberLabel,
)

# How far the table pages. Paging uses OFFSET, whose cost grows with the offset, so
# we stop at the first REACHABLE_ROWS rows of any sort order: the deepest page then
# reads at most 10,000 index entries, a few milliseconds even at a million rows.
# Operators reach the rest by filtering or by reversing the sort, which every column
# offers; a keyset "next page" would reach further but cannot show page numbers or
# jump, and nobody reads page 40,000 of a list. The same number bounds the exact count.
REACHABLE_ROWS = 10_000
# How long a filtered count may run on PostgreSQL before the planner's estimate replaces it (count_subscribers).
COUNT_TIME_BOX = "25ms"


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


def sorted_after_filtering(queryset: QuerySet) -> QuerySet:
    """`queryset` in the same order, by expressions that no index matches, for a filter matching few rows.

    With ORDER BY a column and LIMIT, the planner likes to walk that column's index and test the filter on
    each row, expecting matches spread evenly. When they are not (subscribers created this week, sorted by
    the oldest update: they all come last), the walk reads nearly the whole table, seconds at a million.
    `COALESCE(x, x)` sorts exactly as `x` does but hides the index, so the database finds the matching rows
    first (through the filter's own index) and sorts them: cheap when they are at most REACHABLE_ROWS.
    """
    ordering = []
    for item in queryset.query.order_by:
        if not isinstance(item, str):
            ordering.append(item)
            continue
        name = item.removeprefix("-")
        hidden = Coalesce(F(name), F(name))
        ordering.append(hidden.desc() if item.startswith("-") else hidden.asc())
    return queryset.order_by(*ordering)


def count_subscribers(queryset: QuerySet, *, filtered: bool) -> Total:
    """Count `queryset` exactly when that is cheap, else estimate it.

    One bounded COUNT reads at most REACHABLE_ROWS + 1 rows. Past that,
    SQLite counts exactly (it has no estimate, and counts 100,000 rows in a
    few milliseconds); PostgreSQL uses its statistics: pg_class.reltuples for
    the whole table, the planner's row estimate for a filtered one.
    """
    queryset = queryset.order_by()
    bounded = _bounded_count(queryset, timed=filtered)
    if bounded is not None and bounded <= REACHABLE_ROWS:
        return Total(bounded, exact=True)
    if connection.vendor != "postgresql":
        return Total(queryset.count(), exact=True)
    estimate = None if filtered else _table_estimate()
    if estimate is None:
        estimate = _planner_estimate(queryset)
    return Total(max(estimate, REACHABLE_ROWS + 1), exact=False)


def _bounded_count(queryset: QuerySet, *, timed: bool) -> int | None:
    """COUNT at most REACHABLE_ROWS + 1 rows; on PostgreSQL, None when a filtered count outruns COUNT_TIME_BOX.

    A filter that few rows match reads many to find REACHABLE_ROWS + 1 of them: "without any label"
    (3% of a million) read 340,000 subscribers and as many assignments, 600 ms, for a number that is
    then shown as "about" anyway past 10,000. The statement is cancelled after COUNT_TIME_BOX and the
    planner's estimate stands in. Within an outer transaction (tests, a caller's atomic block) the
    savepoint keeps a cancelled count from breaking it, and the time limit is put back explicitly:
    SET LOCAL would otherwise last until that transaction ends.
    """
    bounded = queryset[: REACHABLE_ROWS + 1]
    if not timed or connection.vendor != "postgresql":
        return bounded.count()
    nested = connection.in_atomic_block
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [COUNT_TIME_BOX])
            count = bounded.count()
            if nested:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
            return count
    except OperationalError as error:
        if not isinstance(error.__cause__, QueryCanceled):
            raise
        return None


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


# Apps above this one select subscribers in their own terms (a broadcast's recipients, by outcome): each
# registers here, from its AppConfig.ready(), a function turning its key of a stored selection into a
# queryset of subscriber ids. So a bulk label change can select them without this app importing theirs.
SELECTION_SOURCES: dict[str, Callable[[dict], QuerySet]] = {}


def subscribers_matching(selection: dict, *, ids_after: int | None = None, ids_up_to: int | None = None) -> QuerySet:
    """The subscribers a stored selection names: explicit `ids`, or the table's filter parameters.

    Bulk operations store their selection this way, so the confirmation, the
    change and a background run all select the very same subscribers. A key of
    SELECTION_SOURCES narrows it further (e.g. `{"recipients": {"broadcast": 7, "status": "sent"}}`).
    `ids_after` / `ids_up_to` limit it to a range of ids (a bulk change's chunk), index-backed.
    """
    filterset = SubscriberFilter(
        MultiValueDict({name: list(values) for name, values in selection.get("filters", {}).items()}),
        queryset=Subscriber.objects.all(),
        ids_after=ids_after,
        ids_up_to=ids_up_to,
    )
    if not filterset.is_valid():
        raise ValueError("; ".join(filterset.problems()))
    subscribers = filterset.qs.order_by()
    if "ids" in selection:
        subscribers = subscribers.filter(pk__in=selection["ids"])
    for key, source in SELECTION_SOURCES.items():
        if key in selection:
            subscribers = subscribers.filter(pk__in=source(selection[key]))
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


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a subscriber's label history: a single change, or their part in a bulk operation."""

    at: datetime
    action: str  # LabelChangeAction
    label_name: str
    label: Label | None
    by: object  # the user, or None
    source: str
    operation: LabelOperation | None = None

    @property
    def action_display(self) -> str:
        return LabelChangeAction(self.action).label

    @property
    def source_display(self) -> str:
        return LabelSource(self.source).label


def label_history(subscriber: Subscriber, limit: int) -> list[HistoryEntry]:
    """The subscriber's latest `limit` label changes, newest first: single changes and bulk operations merged.

    Three queries: the single changes, the bulk operations that changed this
    subscriber (through their members), and those operations' labels.
    """
    changes = (
        LabelChange.objects.filter(subscriber=subscriber)
        .select_related("label", "changed_by")
        .order_by("-changed_at", "-pk")[:limit]
    )
    entries = [
        HistoryEntry(
            change.changed_at, change.action, change.label_name, change.label, change.changed_by, change.source
        )
        for change in changes
    ]
    members = list(
        LabelOperationMember.objects.filter(subscriber=subscriber)
        .order_by("-operation_id")
        .values_list("operation_id", "label_id")[: limit * 4]
    )
    operations = LabelOperation.objects.select_related("created_by").in_bulk({operation for operation, _ in members})
    labels = Label.objects.in_bulk({label for _, label in members})
    for operation_id, label_id in members:
        operation = operations.get(operation_id)
        if operation is None:
            continue
        label = labels.get(label_id)
        entries.append(
            HistoryEntry(
                operation.started_at or operation.created_at,
                LabelChangeAction.ADDED if operation.kind == LabelOperation.Kind.ADD else LabelChangeAction.REMOVED,
                label.name if label else (operation.label_names[0] if len(operation.label_names) == 1 else ""),
                label,
                operation.created_by,
                operation.source,
                operation,
            )
        )
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


@dataclass(frozen=True)
class FeedEntry:
    kind: str  # "change" or "operation"
    at: datetime
    item: LabelChange | LabelOperation

    @property
    def cursor(self) -> str:
        return cursors.encode(self.at.isoformat(), self.kind, self.item.pk)


# Entries younger than this are not served yet: a transaction that stamped an earlier time may still
# be about to commit, and a reader whose cursor had passed it would never see it.
FEED_SETTLE = timedelta(seconds=2)


def label_change_feed(after: str, limit: int, *, visible: Q) -> tuple[list[FeedEntry], str | None]:
    """Label changes in (time, kind, id) order after the cursor `after`: single changes and finished operations.

    Two index range scans, merged. `visible` limits the single changes to some
    subscribers (an API key's channels). Returns the entries and the cursor to
    read on from (the last entry's, or `after` itself when there is nothing new).
    Raises ValueError on a cursor this did not make.
    """
    changes = LabelChange.objects.filter(subscriber__in=Subscriber.objects.filter(visible).values("pk"))
    operations = LabelOperation.objects.filter(finished_at__isnull=False, changed_count__gt=0)
    if after:
        at, kind, pk = cursors.decode(after)
        at, pk = datetime.fromisoformat(at), int(pk)
        if at.tzinfo is None or kind not in ("change", "operation"):
            raise ValueError(after)
        if kind == "change":
            changes = changes.filter(TupleGreaterThan(Tuple("changed_at", "pk"), (at, pk)))
            operations = operations.filter(finished_at__gte=at)
        else:
            changes = changes.filter(changed_at__gt=at)
            operations = operations.filter(TupleGreaterThan(Tuple("finished_at", "pk"), (at, pk)))
    settled = timezone.now() - FEED_SETTLE
    entries = [
        FeedEntry("change", change.changed_at, change)
        for change in changes.filter(changed_at__lte=settled)
        .select_related("subscriber__channel")
        .order_by("changed_at", "pk")[:limit]
    ] + [
        FeedEntry("operation", operation.finished_at, operation)
        for operation in operations.filter(finished_at__lte=settled).order_by("finished_at", "pk")[:limit]
    ]
    entries.sort(key=lambda entry: (entry.at, entry.kind, entry.item.pk))
    entries = entries[:limit]
    return entries, (entries[-1].cursor if entries else after or None)


def operation_members(operation: LabelOperation, after: str, limit: int, *, visible: Q):
    """(subscriber id, label id, channel name, foreign id, label name) of what `operation` changed, by ids.

    `after` is "subscriber_id.label_id" of the last row read, or empty.
    """
    members = LabelOperationMember.objects.filter(operation=operation)
    if after:
        subscriber_id, label_id = (int(part) for part in after.split("."))
        members = members.filter(TupleGreaterThan(Tuple("subscriber_id", "label_id"), (subscriber_id, label_id)))
    subscribers = Subscriber.objects.filter(visible, pk=OuterRef("subscriber_id"))
    fallback = operation.label_names[0] if len(operation.label_names) == 1 else ""
    rows = (
        members.filter(Exists(subscribers))
        .annotate(
            channel=Subquery(subscribers.values("channel__name")),
            foreign_id=Subquery(subscribers.values("foreign_id")),
            label_name=Subquery(Label.objects.filter(pk=OuterRef("label_id")).values("name")),
        )
        .order_by("subscriber_id", "label_id")
        .values_list("subscriber_id", "label_id", "channel", "foreign_id", "label_name")[:limit]
    )
    return [(s, label, channel, foreign_id, name or fallback) for s, label, channel, foreign_id, name in rows]


def recent_operations() -> QuerySet:
    """Bulk operations, newest first, with what their rows show (labels, who, whether undone)."""
    return LabelOperation.objects.select_related("created_by", "undoes", "undone_by", "cancelled_by").prefetch_related(
        "labels"
    )


def exclusive_losses(subscribers: QuerySet, labels: list[Label]) -> list[tuple[str, int]]:
    """Adding `labels`: the title of each label of their exclusive groups that the selected subscribers would
    lose, and how many of them carry it now. Two queries (the groups' labels, one grouped count); none without groups.
    """
    given = {label.pk for label in labels}
    groups = exclusive_groups_of(given)
    others = sorted({pk for members in groups.values() for pk in members} - given)
    if not others:
        return []
    counts = (
        SubscriberLabel.objects.filter(subscriber__in=subscribers.order_by().values("pk"), label__in=others)
        .order_by("label__title")
        .values("label", "label__title")
        .annotate(n=Count("*"))
        .values_list("label__title", "n")
    )
    return list(counts)
