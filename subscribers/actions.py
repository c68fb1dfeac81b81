"""Every change to subscribers' labels goes through these functions.

The modal, bulk actions, the admin, the API and imports all call them, so
there is one place to audit and one place to make fast. Each runs a fixed
number of set-based statements, whatever the number of subscribers, and
records one history row per label really added or removed.
"""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from labels.models import Label
from subscribers.models import (
    LabelChange,
    LabelChangeAction,
    LabelOperation,
    LabelSource,
    Subscriber,
    SubscriberLabel,
)
from subscribers.signals import labels_changed


def _label_ids(labels: Iterable[Label | int]) -> list[int]:
    return sorted({label.pk if isinstance(label, Label) else int(label) for label in labels})


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _stamp_and_lock(subscribers: QuerySet, needs_change, now) -> None:
    """Set `updated_at` on the selected subscribers whose labels are about to change.

    The rows are locked in primary-key order (FOR UPDATE in the subquery, on
    PostgreSQL), so two overlapping bulk operations wait for each other instead
    of deadlocking, and each sees the other's committed assignments.
    """
    changing = subscribers.order_by("pk").filter(needs_change).select_for_update().values("pk")
    Subscriber.objects.filter(pk__in=changing).update(updated_at=now)


def add_labels(
    subscribers: QuerySet,
    labels: Iterable[Label | int],
    *,
    by=None,
    source: str = LabelSource.APP,
    operation=None,
    now=None,
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
        _stamp_and_lock(subscribers, lacking_one, now)
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
        _stamp_and_lock(
            subscribers, Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label__in=label_ids)), now
        )
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
        add_labels(one, add, by=by, source=source, now=now),
        remove_labels(one, remove, by=by, source=source, now=now),
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
