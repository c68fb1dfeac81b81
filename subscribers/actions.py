"""Every change to a subscriber or to a subscriber's labels goes through these functions.

Views, the admin, the API, commands and tasks call them and nothing else, so
there is one place to audit and one place to make fast. Each hands the webhook
outbox an event naming the subscribers it changed, stored in the same
transaction and sent after commit (subscribers.events).

Two kinds of label change:
- one subscriber (the Manage labels dialog, the API): one short transaction,
  one history row (`LabelChange`) per label added or removed;
- a bulk operation (`LabelOperation`): recorded once, then run in chunks of
  CHUNK_SIZE subscribers in id order, each chunk its own transaction that
  also records exactly which assignments it changed (`LabelOperationMember`)
  and how far it got. It locks no subscriber row and holds its locks for one
  chunk; a worker that dies loses nothing, and the sweep resumes it.

No label change moves `Subscriber.updated_at`: that is the profile's date.
"""

import json
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, Max, Min
from django.tasks import task
from django.utils import timezone

from labels import actions as label_actions
from labels.models import Label
from subscribers import events
from subscribers.models import (
    Channel,
    LabelChange,
    LabelChangeAction,
    LabelCount,
    LabelOperation,
    LabelOperationMember,
    LabelSource,
    Subscriber,
    SubscriberLabel,
)
from subscribers.queries import subscribers_matching

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ["first_name", "last_name", "gender", "locale", "timezone", "country", "avatar_url"]

# Subscribers per chunk: a window of CHUNK_SIZE ids. Measured at a million subscribers on PostgreSQL
# (bench/bulk_labels.py), a chunk of 5,000 commits in about 0.1 s: locks are held that long at most.
CHUNK_SIZE = 5_000

# An unfinished operation whose chunks stopped this long ago has lost its worker: the sweep requeues it.
STALE_AFTER = timedelta(seconds=60)

# A chunk that hits a deadlock or a row deleted under it is tried again this many times before giving up.
CHUNK_ATTEMPTS = 3

# After a change this large, PostgreSQL's statistics on the assignments are stale enough for the planner
# to pick nested loops over hundreds of thousands of rows in the next filter on them (seen: minutes instead
# of seconds); production runs autovacuum, which gets there later.
ANALYZE_AFTER = 10_000

# Any 64-bit number will do: it names the lock PostgreSQL holds while one chunk of a bulk change runs.
# Chunks of different operations take turns, so two overlapping operations cannot deadlock.
BULK_CHUNK_LOCK = 7_233_641_024


# --- Profiles -------------------------------------------------------------------------------------


def upsert_subscriber(channel: Channel, foreign_id: str, profile: dict) -> tuple[Subscriber, bool, list[str]]:
    """Record an interaction: create the subscriber on first contact, else update what changed.

    `profile` holds only the fields the channel sent. `updated_at` moves only when a field
    really changed; `last_seen_at` always does. Two simultaneous first contacts create one
    subscriber: the loser of the insert race gets the unique-constraint error and updates
    the winner's row instead. Returns (subscriber, created, names of changed fields).
    """
    now = timezone.now()
    with transaction.atomic():
        subscriber = _locked(channel, foreign_id)
        if subscriber is None:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(
                        channel=channel,
                        foreign_id=foreign_id,
                        created_at=now,
                        updated_at=now,
                        last_seen_at=now,
                        **profile,
                    )
                events.subscriber_saved(subscriber, channel.name, created=True, changed=[])
                return subscriber, True, []
            except IntegrityError:
                subscriber = _locked(channel, foreign_id)
                if subscriber is None:
                    raise
        changed = [name for name, value in profile.items() if getattr(subscriber, name) != value]
        for name in changed:
            setattr(subscriber, name, profile[name])
        subscriber.last_seen_at = now
        if changed:
            subscriber.updated_at = now
            subscriber.save(update_fields=[*changed, "updated_at", "last_seen_at"])
            events.subscriber_saved(subscriber, channel.name, created=False, changed=changed)
        else:
            subscriber.save(update_fields=["last_seen_at"])
    return subscriber, False, changed


def _locked(channel, foreign_id):
    return Subscriber.objects.select_for_update().filter(channel=channel, foreign_id=foreign_id).first()


# --- One subscriber's labels ----------------------------------------------------------------------


def _label_ids(labels: Iterable[Label | int]) -> list[int]:
    return sorted({label.pk if isinstance(label, Label) else int(label) for label in labels})


@transaction.atomic
def change_labels(
    subscriber: Subscriber,
    *,
    add: Iterable[Label | int] = (),
    remove: Iterable[Label | int] = (),
    by=None,
    source: str = LabelSource.APP,
) -> tuple[int, int]:
    """Apply one person's additions and removals to one subscriber's labels.

    Only the labels named change: a label someone else added meanwhile stays.
    Each label really added or removed gets a history row. Returns (added, removed) counts.
    """
    now = timezone.now()
    added = _apply(LabelOperation.Kind.ADD, [(subscriber.pk, label) for label in _label_ids(add)], by=by, now=now)
    removed = _apply(LabelOperation.Kind.REMOVE, [(subscriber.pk, label) for label in _label_ids(remove)])
    changes = [(pair, LabelChangeAction.ADDED) for pair in added] + [
        (pair, LabelChangeAction.REMOVED) for pair in removed
    ]
    if changes:
        names = dict(Label.objects.filter(pk__in=[label for (_, label), _ in changes]).values_list("pk", "name"))
        LabelChange.objects.bulk_create(
            LabelChange(
                subscriber_id=subscriber_id,
                label_id=label_id,
                label_name=names.get(label_id, ""),
                action=action,
                source=source,
                changed_by=by,
                changed_at=now,
            )
            for (subscriber_id, label_id), action in changes
        )
        events.labels_changed(
            [subscriber.pk], added=[label for _, label in added], removed=[label for _, label in removed]
        )
    return len(added), len(removed)


# --- Set-based statements on (subscriber, label) pairs --------------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _pairs_source(pairs: list[tuple[int, int]]) -> tuple[str, list]:
    """A derived table `p(s, l)` of (subscriber id, label id) pairs, sent as one parameter or two."""
    if connection.vendor == "postgresql":
        return (
            "(SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS u(s, l))",
            [[s for s, _ in pairs], [label for _, label in pairs]],
        )
    return (
        "(SELECT json_extract(value, '$[0]') AS s, json_extract(value, '$[1]') AS l FROM json_each(%s))",
        [json.dumps(pairs)],
    )


def _apply(kind: str, pairs: list[tuple[int, int]], *, by=None, now=None) -> list[tuple[int, int]]:
    """Add (or remove) these assignments; return exactly the pairs that changed, in one statement.

    Pairs already in the wanted state are left alone (ON CONFLICT DO NOTHING, or
    nothing to delete), so the counts stay exact whatever others do meanwhile.
    """
    if not pairs:
        return []
    source, params = _pairs_source(sorted(pairs))
    with connection.cursor() as cursor:
        if kind == LabelOperation.Kind.ADD:
            cursor.execute(
                f"""
                INSERT INTO {_table(SubscriberLabel)} (subscriber_id, label_id, assigned_at, assigned_by_id)
                SELECT p.s, p.l, %s, %s FROM {source} AS p WHERE true
                ON CONFLICT (label_id, subscriber_id) DO NOTHING
                RETURNING subscriber_id, label_id
                """,
                [connection.ops.adapt_datetimefield_value(now or timezone.now()), by.pk if by else None, *params],
            )
        else:
            cursor.execute(
                f"""
                DELETE FROM {_table(SubscriberLabel)}
                WHERE (subscriber_id, label_id) IN (SELECT p.s, p.l FROM {source} AS p)
                RETURNING subscriber_id, label_id
                """,
                params,
            )
        return sorted(cursor.fetchall())


def _record_members(operation: LabelOperation, pairs: list[tuple[int, int]]) -> None:
    if not pairs:
        return
    source, params = _pairs_source(pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_table(LabelOperationMember)} (operation_id, subscriber_id, label_id)
            SELECT %s, p.s, p.l FROM {source} AS p
            """,
            [operation.pk, *params],
        )


# --- Bulk operations ------------------------------------------------------------------------------


def start_label_operation(
    kind: str,
    labels: list[Label],
    *,
    by=None,
    source: str,
    selection: dict | None = None,
    undoes: LabelOperation | None = None,
    delete_label: Label | None = None,
) -> LabelOperation:
    """Record a bulk operation and freeze its selection; it has not changed anything yet.

    `selection` is what `subscribers.queries.subscribers_matching` reads (the
    table's filter parameters, and `ids` when rows were ticked); an undo walks
    the members of the operation it `undoes` instead. One query counts the
    selection and finds its highest id: subscribers created later are not in it.
    Raises ValueError when the selection's filter is invalid.
    """
    if undoes is not None:
        candidates = LabelOperationMember.objects.filter(operation=undoes).values("subscriber_id")
        bounds = candidates.aggregate(
            total=Count("subscriber_id", distinct=True), first=Min("subscriber_id"), last=Max("subscriber_id")
        )
    else:
        bounds = subscribers_matching(selection).aggregate(total=Count("pk"), first=Min("pk"), last=Max("pk"))
    operation = LabelOperation.objects.create(
        kind=kind,
        source=source,
        label_names=[label.name for label in labels],
        filters=selection or {},
        undoes=undoes,
        delete_label=delete_label,
        created_by=by,
        total_count=bounds["total"],
        max_subscriber_id=bounds["last"] or 0,
        last_subscriber_id=(bounds["first"] or 1) - 1,
    )
    operation.labels.set(labels)
    return operation


def request_label_operation(
    kind: str, labels: list[Label], *, by, source: str, selection: dict, delete_label: Label | None = None
) -> LabelOperation:
    """Record a bulk operation and run it now, or in the background when it is large.

    Either way it runs the same chunks. Returns the operation: done, or
    pending with a worker queued once the caller's transaction commits.
    """
    operation = start_label_operation(
        kind, labels, by=by, source=source, selection=selection, delete_label=delete_label
    )
    return _run_or_queue(operation)


def queue_label_operation(operation: LabelOperation) -> None:
    """Have a background worker run `operation` once the current transaction commits."""
    transaction.on_commit(lambda: continue_label_operation.enqueue(operation.pk))


def _run_or_queue(operation: LabelOperation) -> LabelOperation:
    # Above settings.BULK_BACKGROUND_THRESHOLD a request would hold a web worker for seconds.
    if operation.total_count > settings.BULK_BACKGROUND_THRESHOLD:
        queue_label_operation(operation)
        return operation
    return run_label_operation(operation.pk)


def add_labels(subscribers, labels: list[Label], *, by=None, source: str = LabelSource.BULK) -> int:
    """Give these subscribers (a queryset or a list) the labels, as one bulk operation run now.

    For scripts, demo data and tests naming up to some thousands of people:
    the selection is stored as their ids. Returns the number of assignments created.
    """
    return _run_on_ids(LabelOperation.Kind.ADD, subscribers, labels, by=by, source=source)


def remove_labels(subscribers, labels: list[Label], *, by=None, source: str = LabelSource.BULK) -> int:
    """Take the labels away from these subscribers, as `add_labels` gives them. Returns the number removed."""
    return _run_on_ids(LabelOperation.Kind.REMOVE, subscribers, labels, by=by, source=source)


def _run_on_ids(kind, subscribers, labels, *, by, source) -> int:
    ids = sorted(subscriber if isinstance(subscriber, int) else subscriber.pk for subscriber in subscribers)
    labels = [label if isinstance(label, Label) else Label.objects.get(pk=label) for label in labels]
    if not ids or not labels:
        return 0
    operation = start_label_operation(kind, labels, by=by, source=source, selection={"filters": {}, "ids": ids})
    return run_label_operation(operation.pk).changed_count


def undo_label_operation(operation: LabelOperation, *, by) -> LabelOperation:
    """Reverse exactly what `operation` changed, as a new operation that is itself recorded (and undoable).

    Labels it added are taken away again from the subscribers it gave them to,
    and labels it removed given back, whatever happened to others since.
    Raises ValueError when it cannot be undone (not finished, no change, already undone).
    """
    with transaction.atomic():
        operation = LabelOperation.objects.select_for_update().get(pk=operation.pk)
        if not operation.can_undo:
            raise ValueError(f"Operation {operation.pk} cannot be undone.")
        inverse = LabelOperation.Kind.REMOVE if operation.kind == LabelOperation.Kind.ADD else LabelOperation.Kind.ADD
        undo = start_label_operation(
            inverse, list(operation.labels.all()), by=by, source=LabelSource.UNDO, undoes=operation
        )
    return _run_or_queue(undo)


def cancel_label_operation(operation: LabelOperation, *, by) -> bool:
    """Stop a waiting or running operation after its current chunk; what it changed stays (undo reverses it).

    Returns False when it had already finished.
    """
    asked = (
        LabelOperation.objects.filter(
            pk=operation.pk, status__in=[LabelOperation.Status.PENDING, LabelOperation.Status.RUNNING]
        )
        .filter(cancel_requested_at__isnull=True)
        .update(cancel_requested_at=timezone.now(), cancelled_by=by)
    )
    if asked:
        # Marks it cancelled now, after waiting for the chunk a worker may be running (a fraction of a second).
        _run_chunk(operation.pk)
    return bool(asked)


def run_label_operation(operation_id: int, *, after_chunk=None) -> LabelOperation:
    """Run an operation's remaining chunks until it is done, cancelled or failed; return it.

    Safe to call on any operation in any state, by several workers at once:
    each chunk locks the operation's row, re-reads how far it got, and does the
    next window of ids; a finished operation is left as it is. `after_chunk`,
    if given, is called with the operation id after each pass: every committed
    chunk, the last one included, or the pass that found it cancelled or failed.
    """
    more = True
    while more:
        more = _run_chunk_with_retries(operation_id)
        if after_chunk is not None:
            after_chunk(operation_id)
    return LabelOperation.objects.prefetch_related("labels").get(pk=operation_id)


@task()
def continue_label_operation(operation_id: int) -> None:
    """Background: run (or resume) a bulk operation. Queued by `request_label_operation` and the sweep."""
    run_label_operation(operation_id)


def resume_stalled_operations(now=None) -> list[int]:
    """Queue again every unfinished operation whose chunks stopped STALE_AFTER ago (its worker died).

    Run periodically by every `manage.py db_worker`. The conditional UPDATE lets
    one sweeper only take each operation per period. Returns the ids queued.
    """
    now = now or timezone.now()
    unfinished = LabelOperation.objects.filter(
        status__in=[LabelOperation.Status.PENDING, LabelOperation.Status.RUNNING],
        heartbeat_at__lt=now - STALE_AFTER,
    )
    queued = []
    for operation_id in unfinished.values_list("pk", flat=True):
        if unfinished.filter(pk=operation_id).update(heartbeat_at=now):
            continue_label_operation.enqueue(operation_id)
            queued.append(operation_id)
    if queued:
        logger.warning("Resumed stalled bulk label operations %s", queued)
    return queued


def _run_chunk_with_retries(operation_id: int) -> bool:
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return _run_chunk(operation_id)
        except (OperationalError, IntegrityError):
            # A deadlock with a one-subscriber change, or a subscriber deleted under the chunk:
            # the chunk rolled back whole, and its next try sees the new state.
            if attempt == CHUNK_ATTEMPTS:
                raise
            logger.warning("Chunk of bulk label operation %s failed, trying again", operation_id, exc_info=True)
        except ValueError as error:
            # The stored filter no longer applies (a label it names was deleted): it cannot go on.
            _fail(operation_id, str(error))
            return False
    return False


def _fail(operation_id: int, error: str) -> None:
    LabelOperation.objects.filter(pk=operation_id).exclude(status__in=LabelOperation.FINISHED).update(
        status=LabelOperation.Status.FAILED, error=error, finished_at=timezone.now()
    )


def _run_chunk(operation_id: int) -> bool:
    """Do the next chunk of an operation in one transaction; return whether there is more to do."""
    with transaction.atomic():
        operation = LabelOperation.objects.select_for_update().get(pk=operation_id)
        now = timezone.now()
        if operation.is_finished:
            return False
        if operation.cancel_requested_at:
            operation.status, operation.finished_at = LabelOperation.Status.CANCELLED, now
            operation.save(update_fields=["status", "finished_at"])
            return False
        if operation.status == LabelOperation.Status.PENDING:
            operation.status, operation.started_at = LabelOperation.Status.RUNNING, now
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [BULK_CHUNK_LOCK])
        low = operation.last_subscriber_id
        high = min(low + CHUNK_SIZE, operation.max_subscriber_id)
        if low < high:
            seen, candidates = _candidates(operation, low, high)
            changed = _apply(operation.kind, candidates, by=operation.created_by, now=now)
            _record_members(operation, changed)
            subscribers_changed = sorted({subscriber_id for subscriber_id, _ in changed})
            label_ids = sorted({label_id for _, label_id in changed})
            events.labels_changed(
                subscribers_changed,
                added=label_ids if operation.kind == LabelOperation.Kind.ADD else [],
                removed=label_ids if operation.kind == LabelOperation.Kind.REMOVE else [],
                operation=operation,
                batch=f"operation-{operation.pk}",
            )
            operation.selected_count += seen
            operation.changed_count += len(changed)
            operation.changed_subscribers += len(subscribers_changed)
            operation.last_subscriber_id = high
        more = high < operation.max_subscriber_id
        if not more:
            _finish(operation, now)
        operation.heartbeat_at = now
        operation.save()
        return more


def _candidates(operation: LabelOperation, low: int, high: int) -> tuple[int, list[tuple[int, int]]]:
    """The chunk's subscribers (how many) and the (subscriber, label) pairs the operation would change."""
    if operation.undoes_id is not None:
        members = LabelOperationMember.objects.filter(
            operation_id=operation.undoes_id, subscriber_id__gt=low, subscriber_id__lte=high
        )
        if operation.kind == LabelOperation.Kind.ADD:
            # Giving back removed labels: only to subscribers that still exist.
            members = members.filter(subscriber_id__in=Subscriber.objects.filter(pk__gt=low, pk__lte=high).values("pk"))
        pairs = list(members.values_list("subscriber_id", "label_id"))
        return len({subscriber_id for subscriber_id, _ in pairs}), pairs
    ids = list(subscribers_matching(operation.filters).filter(pk__gt=low, pk__lte=high).values_list("pk", flat=True))
    label_ids = list(operation.labels.values_list("pk", flat=True))
    return len(ids), [(subscriber_id, label_id) for subscriber_id in ids for label_id in label_ids]


def _finish(operation: LabelOperation, now) -> None:
    """Mark it done; for a label deletion, take the label from whoever got it meanwhile, then delete it."""
    label = operation.delete_label
    if label is not None:
        late = list(SubscriberLabel.objects.filter(label=label).values_list("subscriber_id", "label_id"))
        changed = _apply(LabelOperation.Kind.REMOVE, late)
        _record_members(operation, changed)
        events.labels_changed(
            sorted({s for s, _ in changed}), removed=[label.pk], operation=operation, batch=f"operation-{operation.pk}"
        )
        operation.changed_count += len(changed)
        operation.changed_subscribers += len({s for s, _ in changed})
        operation.selected_count += len({s for s, _ in changed})
        label_actions.delete_unused_label(label)
        operation.delete_label = None
    operation.status, operation.finished_at = LabelOperation.Status.DONE, now
    if operation.changed_count >= ANALYZE_AFTER and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_table(SubscriberLabel)}")


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


def take_label_from_everyone(label: Label, *, by=None) -> LabelOperation | None:
    """The first half of deleting a label: take it away from its subscribers through a bulk operation.

    Small ones run now, and the label is deleted when this returns; large ones
    run in the background and delete the label when they finish. Returns the
    operation, or None when nobody carried the label.
    """
    carriers = SubscriberLabel.objects.filter(label=label)
    if not carriers.exists():
        return None
    selection = {"filters": {"label": [label.name]}}
    return request_label_operation(
        LabelOperation.Kind.REMOVE,
        [label],
        by=by,
        source=LabelSource.LABEL_DELETED,
        selection=selection,
        delete_label=label,
    )
