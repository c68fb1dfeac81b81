"""Every change to subscribers' labels goes through these functions.

The modal, bulk actions, the admin, the API and imports all call them, so
there is one place to audit and one place to make fast. Each runs a fixed
number of set-based statements, whatever the number of subscribers.
"""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from labels.models import Label
from subscribers.models import Subscriber, SubscriberLabel
from subscribers.signals import labels_changed


def _label_ids(labels: Iterable[Label | int]) -> list[int]:
    return sorted({label.pk if isinstance(label, Label) else int(label) for label in labels})


def _selection_sql(subscribers: QuerySet) -> tuple[str, tuple]:
    """The SQL of `SELECT id AS pk FROM subscriber WHERE <the queryset's filters>`."""
    sql, params = subscribers.order_by().values("pk").query.sql_with_params()
    return sql, tuple(params)


def _assignments(label_ids):
    return SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label__in=label_ids)


def add_labels(subscribers: QuerySet, labels: Iterable[Label | int], *, by=None, now=None) -> int:
    """Give each subscriber in `subscribers` every label in `labels`.

    Subscribers that lacked at least one of the labels get a new `updated_at`;
    the others are left untouched. Returns the number of assignments created.
    Runs two statements however many subscribers are selected.
    """
    label_ids = _label_ids(labels)
    if not label_ids:
        return 0
    with transaction.atomic():
        now = now or timezone.now()
        created = _insert_assignments(subscribers, label_ids, by, now)
        if created:
            labels_changed.send(Subscriber, changed_at=now, added=label_ids, removed=[], by=by)
        return created


def _insert_assignments(subscribers, label_ids, by, now):
    lacking_one = Exists(
        Label.objects.filter(pk__in=label_ids).exclude(
            Exists(SubscriberLabel.objects.filter(label=OuterRef("pk"), subscriber=OuterRef(OuterRef("pk"))))
        )
    )
    # Updating first also locks the subscribers' rows, which serialises overlapping bulk operations.
    Subscriber.objects.filter(pk__in=subscribers.order_by().values("pk")).filter(lacking_one).update(updated_at=now)

    selection_sql, selection_params = _selection_sql(subscribers)
    table = connection.ops.quote_name(SubscriberLabel._meta.db_table)
    placeholders = ", ".join(["%s"] * len(label_ids))
    sql = f"""
        INSERT INTO {table} (subscriber_id, label_id, assigned_at, assigned_by_id)
        SELECT selection.pk, label.id, %s, %s
        FROM ({selection_sql}) AS selection, {connection.ops.quote_name(Label._meta.db_table)} AS label
        WHERE label.id IN ({placeholders})
        ON CONFLICT (label_id, subscriber_id) DO NOTHING
    """
    params = (
        connection.ops.adapt_datetimefield_value(now),
        by.pk if by is not None else None,
        *selection_params,
        *label_ids,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def remove_labels(subscribers: QuerySet, labels: Iterable[Label | int], *, by=None, now=None) -> int:
    """Take every label in `labels` away from each subscriber in `subscribers`.

    Only subscribers that carried at least one of the labels get a new
    `updated_at`. Returns the number of assignments deleted.
    """
    label_ids = _label_ids(labels)
    if not label_ids:
        return 0
    selection = subscribers.order_by().values("pk")
    with transaction.atomic():
        now = now or timezone.now()
        Subscriber.objects.filter(pk__in=selection).filter(Exists(_assignments(label_ids))).update(updated_at=now)
        deleted, _ = SubscriberLabel.objects.filter(subscriber__in=selection, label__in=label_ids).delete()
        if deleted:
            labels_changed.send(Subscriber, changed_at=now, added=[], removed=label_ids, by=by)
    return deleted


@transaction.atomic
def change_labels(
    subscriber: Subscriber, *, add: Iterable[Label | int] = (), remove: Iterable[Label | int] = (), by=None
):
    """Apply one operator's additions and removals to one subscriber.

    Only the labels named change: a label someone else added meanwhile stays.
    Returns (added, removed) counts.
    """
    one = Subscriber.objects.filter(pk=subscriber.pk)
    # One timestamp for both halves, so the change is stamped (and announced) as one.
    now = timezone.now()
    return add_labels(one, add, by=by, now=now), remove_labels(one, remove, by=by, now=now)
