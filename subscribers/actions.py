"""Every change to subscribers' labels goes through these functions.

The modal, bulk actions, the admin, the API and imports all call them, so
there is one place to audit and one place to make fast. Each runs a fixed
number of set-based statements, whatever the number of subscribers, and
records one history row per label really added or removed.
"""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from labels.models import Label
from subscribers.models import (
    LabelChange,
    LabelChangeAction,
    LabelCount,
    LabelOperation,
    LabelSource,
    Subscriber,
    SubscriberLabel,
)
from subscribers.queries import subscribers_matching
from subscribers.signals import labels_changed


def _label_ids(labels: Iterable[Label | int]) -> list[int]:
    return sorted({label.pk if isinstance(label, Label) else int(label) for label in labels})


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Any 64-bit number will do: it names the lock PostgreSQL holds while subscribers' labels change in bulk.
BULK_LABEL_LOCK = 7_233_641_024


def _stamp(subscribers: QuerySet, needs_change, now, *, bulk: bool) -> None:
    """Set `updated_at` on the selected subscribers whose labels are about to change.

    Two bulk changes updating overlapping subscribers in different orders
    could deadlock, so on PostgreSQL bulk changes take one transaction-level
    advisory lock and run one after the other (SQLite writes one at a time
    anyway). A one-subscriber change locks a single row and needs no such lock.
    The later change then sees the earlier one's committed assignments, so
    nothing is lost or recorded twice.
    """
    if bulk and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [BULK_LABEL_LOCK])
    Subscriber.objects.filter(pk__in=subscribers.order_by().filter(needs_change).values("pk")).update(updated_at=now)


# After a change this large, PostgreSQL's statistics on the assignments are stale enough for the
# planner to pick nested loops over hundreds of thousands of rows in the next bulk statement
# (seen: adding a label to 50,000 subscribers, then removing it, took minutes instead of seconds).
ANALYZE_AFTER = 10_000


def _refresh_statistics(changed: int) -> None:
    if changed >= ANALYZE_AFTER and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_table(SubscriberLabel)}")


def add_labels(
    subscribers: QuerySet,
    labels: Iterable[Label | int],
    *,
    by=None,
    source: str = LabelSource.APP,
    operation=None,
    now=None,
    bulk: bool = True,
) -> int:
    """Give each subscriber in `subscribers` every label in `labels`.

    Subscribers that lacked at least one of the labels get a new `updated_at`;
    the others are left untouched. Returns the number of assignments created.
    Runs three statements (stamp, history, assignments) however many
    subscribers are selected.
    """
    label_ids = _label_ids(labels)
    if not label_ids:
        return 0
    now = now or timezone.now()
    lacking_one = Exists(
        Label.objects.filter(pk__in=label_ids).exclude(
            Exists(SubscriberLabel.objects.filter(label=OuterRef("pk"), subscriber=OuterRef(OuterRef("pk"))))
        )
    )
    selection_sql, selection_params = subscribers.order_by().values("pk").query.sql_with_params()
    in_labels = ", ".join(["%s"] * len(label_ids))
    pairs = f"""
        FROM ({selection_sql}) AS selection, {_table(Label)} AS label
        WHERE label.id IN ({in_labels})
          AND NOT EXISTS (
            SELECT 1 FROM {_table(SubscriberLabel)} AS assigned
            WHERE assigned.subscriber_id = selection.pk AND assigned.label_id = label.id
          )
    """
    when = connection.ops.adapt_datetimefield_value(now)
    user_id = by.pk if by is not None else None
    with transaction.atomic(), connection.cursor() as cursor:
        _stamp(subscribers, lacking_one, now, bulk=bulk)
        cursor.execute(
            f"""
            INSERT INTO {_table(LabelChange)}
                (subscriber_id, label_id, label_name, action, source, changed_by_id, changed_at, operation_id)
            SELECT selection.pk, label.id, label.name, %s, %s, %s, %s, %s {pairs}
            """,
            (LabelChangeAction.ADDED, source, user_id, when, operation and operation.pk, *selection_params, *label_ids),
        )
        cursor.execute(
            f"""
            INSERT INTO {_table(SubscriberLabel)} (subscriber_id, label_id, assigned_at, assigned_by_id)
            SELECT selection.pk, label.id, %s, %s {pairs}
            ON CONFLICT (label_id, subscriber_id) DO NOTHING
            """,
            (when, user_id, *selection_params, *label_ids),
        )
        created = cursor.rowcount
        _refresh_statistics(created)
        if created:
            labels_changed.send(Subscriber, changed_at=now, added=label_ids, removed=[], by=by)
    return created


def remove_labels(
    subscribers: QuerySet,
    labels: Iterable[Label | int],
    *,
    by=None,
    source: str = LabelSource.APP,
    operation=None,
    now=None,
    bulk: bool = True,
) -> int:
    """Take every label in `labels` away from each subscriber in `subscribers`.

    Only subscribers that carried at least one of the labels get a new
    `updated_at`. Returns the number of assignments deleted.
    """
    label_ids = _label_ids(labels)
    if not label_ids:
        return 0
    now = now or timezone.now()
    selection = subscribers.order_by().values("pk")
    doomed = SubscriberLabel.objects.filter(subscriber__in=selection, label__in=label_ids)
    doomed_sql, doomed_params = doomed.values("subscriber_id", "label_id").query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        carrying_one = Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label__in=label_ids))
        _stamp(subscribers, carrying_one, now, bulk=bulk)
        cursor.execute(
            f"""
            INSERT INTO {_table(LabelChange)}
                (subscriber_id, label_id, label_name, action, source, changed_by_id, changed_at, operation_id)
            SELECT doomed.subscriber_id, label.id, label.name, %s, %s, %s, %s, %s
            FROM ({doomed_sql}) AS doomed JOIN {_table(Label)} AS label ON label.id = doomed.label_id
            """,
            (
                LabelChangeAction.REMOVED,
                source,
                by.pk if by is not None else None,
                connection.ops.adapt_datetimefield_value(now),
                operation and operation.pk,
                *doomed_params,
            ),
        )
        deleted, _ = doomed.delete()
        _refresh_statistics(deleted)
        if deleted:
            labels_changed.send(Subscriber, changed_at=now, added=[], removed=label_ids, by=by)
    return deleted


@transaction.atomic
def change_labels(
    subscriber: Subscriber,
    *,
    add: Iterable[Label | int] = (),
    remove: Iterable[Label | int] = (),
    by=None,
    source: str = LabelSource.APP,
):
    """Apply one operator's additions and removals to one subscriber.

    Only the labels named change: a label someone else added meanwhile stays.
    Returns (added, removed) counts.
    """
    one = Subscriber.objects.filter(pk=subscriber.pk)
    # One timestamp for both halves, so the change is stamped (and announced) as one.
    now = timezone.now()
    return (
        add_labels(one, add, by=by, source=source, now=now, bulk=False),
        remove_labels(one, remove, by=by, source=source, now=now, bulk=False),
    )


def run_label_operation(operation: LabelOperation, subscribers: QuerySet) -> LabelOperation:
    """Carry out a bulk label operation on `subscribers`, recording counts and timing on it.

    Everything happens in one transaction: a failure leaves no assignment and
    no history behind, and the operation is marked failed with the reason.
    """
    labels = list(operation.labels.all())
    change = add_labels if operation.kind == LabelOperation.Kind.ADD else remove_labels
    operation.status = LabelOperation.Status.RUNNING
    operation.started_at = timezone.now()
    operation.save(update_fields=["status", "started_at"])
    try:
        with transaction.atomic():
            operation.selected_count = subscribers.count()
            operation.changed_count = change(
                subscribers, labels, by=operation.created_by, source=operation.source, operation=operation
            )
    except Exception as error:
        operation.status = LabelOperation.Status.FAILED
        operation.error = str(error)
        operation.finished_at = timezone.now()
        operation.save(update_fields=["status", "error", "finished_at"])
        raise
    operation.status = LabelOperation.Status.DONE
    operation.finished_at = timezone.now()
    operation.save(update_fields=["status", "selected_count", "changed_count", "finished_at"])
    return operation


# Above this many subscribers a bulk operation runs in the background (`manage.py db_worker`).
# Measured on the 2-core development machine with PostgreSQL (bench/bulk_labels.py), a bulk change
# costs about 100 µs per changed subscriber, most of it the `updated_at` stamp: 10,000 subscribers
# answer within about a second, which an operator can wait for; above that, the page shows progress
# instead of holding a request (and a web worker) for many seconds.
BACKGROUND_THRESHOLD = 10_000


def request_label_operation(
    kind: str, labels: list[Label], *, by, source: str, selection: dict, expected_count: int
) -> LabelOperation:
    """Record a bulk label operation and run it now, or in the background when it is large.

    `selection` is what `subscribers.queries.subscribers_matching` reads: the
    table's filter parameters, and `ids` when the operator ticked rows.
    """
    from subscribers.tasks import run_bulk_label_operation  # the task module imports this one

    operation = start_label_operation(kind, labels, by=by, source=source, filters=selection)
    if expected_count > BACKGROUND_THRESHOLD:
        transaction.on_commit(lambda: run_bulk_label_operation.enqueue(operation.pk))
        return operation
    return run_label_operation(operation, subscribers_matching(selection))


def start_label_operation(kind: str, labels: list[Label], *, by, source: str, filters: dict) -> LabelOperation:
    """Record a bulk label operation before it runs, with the labels as they are named now."""
    operation = LabelOperation.objects.create(
        kind=kind,
        source=source,
        label_names=[label.name for label in labels],
        filters=filters,
        created_by=by,
    )
    operation.labels.set(labels)
    return operation


def count_labels() -> None:
    """Recount every label's subscribers (LabelCount) from the assignments.

    The database keeps the counts as assignments come and go (migration
    0006's triggers); this is for data loaded with triggers off, such as the
    benchmark's million subscribers.
    """
    counts = SubscriberLabel.objects.order_by().values("label").annotate(n=Count("*")).values_list("label", "n")
    with transaction.atomic():
        LabelCount.objects.all().delete()
        LabelCount.objects.bulk_create([LabelCount(label_id=label, subscribers=n) for label, n in counts])
