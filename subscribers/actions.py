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
import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, Max, Min, Q
from django.tasks import task
from django.utils import timezone, translation
from django.utils.translation import gettext

from labels import actions as label_actions
from labels.exclusive import clash_message, clashing_sets
from labels.forms import LabelForm
from labels.models import Label, LabelGroup
from labels.names import NAME_PATTERN
from labels.queries import exclusive_groups_of
from subscribers import events, imports
from subscribers.models import (
    Channel,
    LabelChange,
    LabelChangeAction,
    LabelCount,
    LabelOperation,
    LabelOperationMember,
    LabelSource,
    Subscriber,
    SubscriberImport,
    SubscriberImportProblem,
    SubscriberImportRow,
    SubscriberLabel,
)
from subscribers.queries import subscribers_matching
from subscribers.search import search_name
from webhooks import outbox

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ["first_name", "last_name", "gender", "locale", "timezone", "country", "avatar_url"]

# Subscribers per chunk: a window of CHUNK_SIZE ids. Measured at a million subscribers on PostgreSQL
# (bench/bulk_chunked.py), a chunk of 5,000 ids commits in about 50 to 160 ms: locks are held that long.
CHUNK_SIZE = 5_000

# An unfinished operation whose chunks stopped this long ago has lost its worker: the sweep (every 10 s)
# requeues it, so a dead worker is noticed within a minute. A chunk takes well under a second.
STALE_AFTER = timedelta(seconds=45)

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
    subscriber (INSERT … ON CONFLICT DO UPDATE). The subscriber comes back with its channel
    and labels loaded. Returns (subscriber, created, names of changed fields).

    A repeat visit with the same profile, the usual case, is one statement and no transaction;
    a first contact or a real change, two statements (see `upsert_subscribers`).
    """
    [(subscriber, created, changed)] = upsert_subscribers(channel, [(foreign_id, profile)], with_labels=True)
    return subscriber, created, changed


def upsert_subscribers(
    channel: Channel, people: list[tuple[str, dict]], *, with_labels: bool = False
) -> list[tuple[Subscriber, bool, list[str]]]:
    """Record interactions of many people of one channel at once, as `upsert_subscriber` does for one.

    `people` are (foreign id, profile sent). A person named twice counts once, with their last
    profile. Set-based, whatever the number of people:
    1. one UPDATE moves everyone's `last_seen_at` and returns their stored profiles (and labels),
       committed on its own: for people whose profile is as sent, that is all;
    2. then, in one transaction, one INSERT … ON CONFLICT DO UPDATE per set of fields sent creates the
       new people and updates the changed ones, and the webhook events are stored with it.
    Returns (subscriber, created, changed fields) per person, in the order of their last mention.
    """
    latest = dict(people)
    if not latest:
        return []
    now = timezone.now()
    stored = _mark_seen(channel, list(latest), now, with_labels=with_labels)
    saved, pending = {}, {}
    for foreign_id, profile in latest.items():
        subscriber = stored.get(foreign_id)
        if subscriber is not None and not _differs(subscriber, profile):
            saved[foreign_id] = (subscriber, False, [])
        else:
            pending[foreign_id] = profile
    if pending:
        groups: dict[tuple[str, ...], list[str]] = {}
        for foreign_id, profile in sorted(pending.items()):
            groups.setdefault(tuple(name for name in PROFILE_FIELDS if name in profile), []).append(foreign_id)
        # One person: the listening endpoints come back with the statement, saving a round trip.
        endpoints = [] if len(pending) == 1 else None
        with transaction.atomic():
            for sent, foreign_ids in sorted(groups.items()):
                rows = [(foreign_id, pending[foreign_id], stored.get(foreign_id)) for foreign_id in foreign_ids]
                for foreign_id, result in zip(
                    foreign_ids, _upsert(channel, sent, rows, now, with_labels, endpoints), strict=True
                ):
                    saved[foreign_id] = result
            events.subscribers_saved([saved[foreign_id] for foreign_id in sorted(pending)], endpoints=endpoints)
    return [saved[foreign_id] for foreign_id in latest]


def _differs(subscriber: Subscriber, profile: dict) -> bool:
    return any(str(getattr(subscriber, name)) != str(value) for name, value in profile.items())


def _returned(with_labels: bool) -> str:
    table = _table(Subscriber)
    columns = ["id", "foreign_id", *PROFILE_FIELDS, "search_name", "created_at", "updated_at", "last_seen_at"]
    if with_labels:
        columns.append(f"({_labels_json(table)}) AS label_pairs")
    return ", ".join(columns)


def _mark_seen(channel: Channel, foreign_ids: list[str], now, *, with_labels: bool) -> dict[str, Subscriber]:
    """Move `last_seen_at` of these people, in one statement; return them as stored (labels loaded if asked).

    On its own (outside a transaction), PostgreSQL commits it without waiting for the disk: it changes
    nothing but `last_seen_at`, which a crash of the database server may set back by a fraction of a
    second (synchronous_commit off for this transaction only; nothing is ever half-written). On a slow
    disk that wait is most of a repeat visit's time.
    """
    table = _table(Subscriber)
    returning = _returned(with_labels)
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        returning += ", set_config('synchronous_commit', 'off', true) AS commit_without_waiting"
    sql = (
        f"UPDATE {table} SET last_seen_at = %s "
        f"WHERE channel_id = %s AND foreign_id IN ({', '.join(['%s'] * len(foreign_ids))}) "
        f"RETURNING {returning}"
    )
    found = {}
    for subscriber in Subscriber.objects.raw(sql, [_db_time(now), channel.pk, *foreign_ids]):
        subscriber.channel = channel
        if with_labels:
            _attach_labels(subscriber, subscriber.label_pairs)
        found[subscriber.foreign_id] = subscriber
    return found


def _upsert(channel, sent: tuple[str, ...], rows, now, with_labels: bool, endpoints: list | None):
    """One INSERT … ON CONFLICT DO UPDATE … RETURNING for people who all sent the fields `sent`.

    `rows` are (foreign id, profile, the subscriber as `_mark_seen` found it or None). `updated_at` moves,
    in the statement, only where a sent field is distinct from the stored one, so it stays exact when
    someone else changed the row meanwhile. `endpoints`, when a list, receives the active webhook
    endpoints, read by the same statement.
    """
    table, postgres = _table(Subscriber), connection.vendor == "postgresql"
    names_sent = {"first_name", "last_name"} & set(sent)
    columns = ["channel_id", "foreign_id", *PROFILE_FIELDS, "search_name", "created_at", "updated_at", "last_seen_at"]
    values, params = [], []
    for foreign_id, profile, before in rows:
        merged = {name: str(getattr(before, name)) if before else "" for name in ("first_name", "last_name")}
        merged.update((name, profile[name]) for name in names_sent)
        values.append(f"({', '.join(['%s'] * len(columns))})")
        params += [channel.pk, foreign_id, *(profile.get(name, "") for name in PROFILE_FIELDS)]
        params += [search_name(merged["first_name"], merged["last_name"]), *[_db_time(now)] * 3]
    distinct = " IS DISTINCT FROM " if postgres else " IS NOT "
    differs = " OR ".join(f"{table}.{name}{distinct}EXCLUDED.{name}" for name in sent) or "false"
    updates = [f"{name} = EXCLUDED.{name}" for name in sent]
    if names_sent:
        updates.append("search_name = EXCLUDED.search_name")
    updates += [
        f"updated_at = CASE WHEN {differs} THEN EXCLUDED.updated_at ELSE {table}.updated_at END",
        "last_seen_at = EXCLUDED.last_seen_at",
    ]
    returning = _returned(with_labels)
    if endpoints is not None:
        returning += f", ({outbox.active_endpoints_sql()}) AS active_endpoints"
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(values)} "
        f"ON CONFLICT (foreign_id, channel_id) DO UPDATE SET {', '.join(updates)} RETURNING {returning}"
    )
    found = {subscriber.foreign_id: subscriber for subscriber in Subscriber.objects.raw(sql, params)}
    results, stale_search = [], []
    for foreign_id, profile, before in rows:
        subscriber = found[foreign_id]
        subscriber.channel = channel
        if with_labels:
            _attach_labels(subscriber, subscriber.label_pairs)
        if endpoints is not None:
            endpoints[:] = outbox.endpoints_from(subscriber.active_endpoints)
        created = subscriber.created_at == now
        changed = []
        if not created and subscriber.updated_at == now:
            # Seen a moment ago: what differs from then. Not seen: another request has just created it,
            # with fields we cannot know, so each field sent counts as changed (and the search name is redone).
            changed = [name for name in sent if before is None or str(getattr(before, name)) != str(profile[name])]
            changed = changed or list(sent)
        if len(names_sent) == 1:
            # One half of the name was sent, joined to the other half as this request last saw it. Someone may
            # have changed that half meanwhile (or created the person): the row as returned, locked by this
            # statement until the commit, has both halves as they now are.
            folded = search_name(subscriber.first_name, subscriber.last_name)
            if folded != subscriber.search_name:
                subscriber.search_name = folded
                stale_search.append((folded, subscriber.pk))
        results.append((subscriber, created, changed))
    if stale_search:
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET search_name = %s WHERE id = %s", stale_search)
    return results


def _labels_json(table: str) -> str:
    """A subquery: the subscriber's labels as a JSON array of [name, title], by name."""
    assignments, labels = _table(SubscriberLabel), _table(Label)
    if connection.vendor == "postgresql":
        return (
            f"SELECT COALESCE(json_agg(json_build_array(l.name, l.title) ORDER BY l.name), '[]') "
            f"FROM {assignments} AS a JOIN {labels} AS l ON l.id = a.label_id WHERE a.subscriber_id = {table}.id"
        )
    return (
        f"SELECT json_group_array(json_array(name, title)) FROM (SELECT l.name, l.title FROM {assignments} AS a "
        f"JOIN {labels} AS l ON l.id = a.label_id WHERE a.subscriber_id = {table}.id ORDER BY l.name)"
    )


def _attach_labels(subscriber: Subscriber, pairs) -> None:
    """Give `subscriber.labels.all()` these labels without a query, as prefetch_related would."""
    pairs = json.loads(pairs) if isinstance(pairs, str) else pairs
    labels = subscriber.labels.all()
    labels._result_cache = [Label(name=name, title=title) for name, title in pairs]
    labels._prefetch_done = True
    subscriber._prefetched_objects_cache = {"labels": labels}


def set_opt_out(subscriber: Subscriber, opted_out: bool, *, when=None) -> bool:
    """Opt the subscriber out of promotional messages (their "STOP"), or back in; return whether it changed.

    Not a profile change: `updated_at` stays. Broadcasts re-read it before each
    send, so a STOP heard while a broadcast goes out stops it for this person.
    A real change sends subscriber.opted_out or subscriber.opted_in (webhooks), stored with it.
    """
    subscribers = Subscriber.objects.filter(pk=subscriber.pk)
    with transaction.atomic():
        if opted_out:
            subscriber.opted_out_at = when or timezone.now()
            changed = subscribers.filter(opted_out_at__isnull=True).update(opted_out_at=subscriber.opted_out_at)
        else:
            subscriber.opted_out_at = None
            changed = subscribers.filter(opted_out_at__isnull=False).update(opted_out_at=None)
        if changed:
            events.opt_out_changed(subscriber, opted_out=opted_out)
    if not changed:
        subscriber.refresh_from_db(fields=["opted_out_at"])
    return bool(changed)


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
    A label of an exclusive group takes the group's other labels away from the
    subscriber, recorded with the source "exclusive group"; asking for two
    labels of one exclusive group raises ExclusiveClash and changes nothing, and
    so does a label both in `add` and in `remove` (ValueError: callers check first).
    Each label really added or removed gets a history row. Returns (added, removed) counts.
    """
    now = timezone.now()
    add_ids = _label_ids(add)
    if both := set(add_ids) & set(_label_ids(remove)):
        raise ValueError(f"Labels {sorted(both)} are both added and removed.")
    groups = exclusive_groups_of(add_ids)
    if groups:
        _check_no_clash(add_ids, groups)
        _lock_for_exclusive_change(subscriber)
    added = _apply(LabelOperation.Kind.ADD, [(subscriber.pk, label) for label in add_ids], by_id=by and by.pk, now=now)
    removed = _apply(LabelOperation.Kind.REMOVE, [(subscriber.pk, label) for label in _label_ids(remove)])
    displaced = _displace([(subscriber.pk, label) for label in add_ids]) if groups else []
    changes = [(pair, LabelChangeAction.ADDED, source) for pair in added] + [
        (pair, LabelChangeAction.REMOVED, source) for pair in removed
    ]
    changes += [(pair, LabelChangeAction.REMOVED, LabelSource.EXCLUSIVE_GROUP) for pair in displaced]
    if changes:
        names = dict(Label.objects.filter(pk__in=[label for (_, label), _, _ in changes]).values_list("pk", "name"))
        LabelChange.objects.bulk_create(
            LabelChange(
                subscriber_id=subscriber_id,
                label_id=label_id,
                label_name=names.get(label_id, ""),
                action=action,
                source=why,
                changed_by=by,
                changed_at=now,
            )
            for (subscriber_id, label_id), action, why in changes
        )
        events.labels_changed(
            [subscriber.pk],
            added=[label for _, label in added],
            removed=sorted({label for _, label in removed + displaced}),
        )
    return len(added), len(removed) + len(displaced)


class ExclusiveClash(ValueError):
    """Two or more labels of one exclusive group asked for at once: `labels` lists each clashing set."""

    def __init__(self, labels: list[list[Label]]):
        super().__init__("; ".join(", ".join(label.name for label in same) for same in labels))
        self.labels = labels


def _check_no_clash(label_ids: list[int], groups: dict[int, set[int]]) -> None:
    clashing = clashing_sets(label_ids, groups)
    if clashing:
        found = Label.objects.in_bulk([pk for ids in clashing for pk in ids])
        raise ExclusiveClash([[found[pk] for pk in ids if pk in found] for ids in clashing])


def _lock_for_exclusive_change(subscriber: Subscriber) -> None:
    """Serialise this change with every other that could give the subscriber a label of the same group.

    The subscriber's row lock orders two single changes (the second one's removal
    then sees the first one's label); the shared bulk lock waits for a bulk or
    import chunk under way (a fraction of a second), whose own removal then ran
    before this change or sees it.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [BULK_CHUNK_LOCK])
    Subscriber.objects.select_for_update(no_key=True).filter(pk=subscriber.pk).values_list("pk").first()


def _displace(added: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Take away, from each subscriber of these (subscriber, label) pairs, the other labels of the label's
    exclusive group; return the pairs removed. One statement; labels in no exclusive group change nothing.

    A label that is itself among the pairs of the same subscriber stays (callers refuse such clashes).
    """
    if not added:
        return []
    source, params = _pairs_source(sorted(added))
    labels, groups = _table(Label), _table(LabelGroup)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {_table(SubscriberLabel)} WHERE (subscriber_id, label_id) IN (
                SELECT other.subscriber_id, other.label_id
                FROM {source} AS p
                JOIN {labels} AS given ON given.id = p.l
                JOIN {groups} AS g ON g.id = given.group_id AND g.exclusive
                JOIN {_table(SubscriberLabel)} AS other ON other.subscriber_id = p.s
                JOIN {labels} AS same ON same.id = other.label_id AND same.group_id = given.group_id
                WHERE other.label_id <> p.l
                  AND NOT EXISTS (SELECT 1 FROM {source} AS k WHERE k.s = other.subscriber_id AND k.l = other.label_id)
            )
            RETURNING subscriber_id, label_id
            """,
            [*params, *params],
        )
        return sorted(cursor.fetchall())


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


def _apply(kind: str, pairs: list[tuple[int, int]], *, by_id: int | None = None, now=None) -> list[tuple[int, int]]:
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
                [connection.ops.adapt_datetimefield_value(now or timezone.now()), by_id, *params],
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
    Raises ValueError when the selection's filter is invalid, and ExclusiveClash
    when an addition names two labels of one exclusive group.
    """
    if kind == LabelOperation.Kind.ADD and undoes is None:
        label_ids = _label_ids(labels)
        groups = exclusive_groups_of(label_ids)
        if groups:
            _check_no_clash(label_ids, groups)
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
        except OperationalError:
            # A deadlock with a one-subscriber change, or the database going away: the chunk rolled back
            # whole. Tried again now, then (the database being down) by the sweep once this worker is gone.
            if attempt == CHUNK_ATTEMPTS:
                raise
            logger.warning("Chunk of bulk label operation %s failed, trying again", operation_id, exc_info=True)
        except IntegrityError as error:
            # A subscriber deleted under the chunk: its next try no longer sees them. Past that, it would
            # fail the same way at every resume, so it stops with the reason.
            if attempt == CHUNK_ATTEMPTS:
                _fail(operation_id, str(error))
                return False
        except ValueError as error:
            # The stored filter no longer applies, or a label of the change was deleted: it cannot go on.
            _fail(operation_id, str(error))
            return False
        except Exception as error:
            # A bug: resuming would fail again forever. It stops, says why, and what it changed stays undoable.
            logger.exception("Bulk label operation %s failed", operation_id)
            _fail(operation_id, f"{error.__class__.__name__}: {error}")
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
                # A chunk's plans are small index scans: parallel workers only cost their start-up (~20 ms).
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s), set_config('max_parallel_workers_per_gather', '0', true)",
                    [BULK_CHUNK_LOCK],
                )
        low = operation.last_subscriber_id
        high = min(low + CHUNK_SIZE, operation.max_subscriber_id)
        if low < high:
            if connection.vendor == "postgresql" and operation.undoes_id is None:
                seen, changed_count, subscribers_changed, label_ids = _change_chunk_in_one_statement(
                    operation, low, high, now
                )
            else:
                seen, candidates = _candidates(operation, low, high)
                changed = _apply(operation.kind, candidates, by_id=operation.created_by_id, now=now)
                _record_members(operation, changed)
                changed_count = len(changed)
                subscribers_changed = sorted({subscriber_id for subscriber_id, _ in changed})
                label_ids = sorted({label_id for _, label_id in changed})
            events.labels_changed(
                subscribers_changed,
                added=label_ids if operation.kind == LabelOperation.Kind.ADD else [],
                removed=label_ids if operation.kind == LabelOperation.Kind.REMOVE else [],
                operation=operation,
                batch=f"operation-{operation.pk}",
            )
            if operation.kind == LabelOperation.Kind.ADD:
                _record_displaced(operation, _displace_in_chunk(operation, low, high), now)
            operation.selected_count += seen
            operation.changed_count += changed_count
            operation.changed_subscribers += len(subscribers_changed)
            operation.last_subscriber_id = high
        more = high < operation.max_subscriber_id
        if not more:
            _finish(operation, now)
        operation.heartbeat_at = now
        operation.save()
        return more


def _displace_in_chunk(operation: LabelOperation, low: int, high: int) -> list[tuple[int, int]]:
    """After a chunk of an addition: take the other labels of each added label's exclusive group away from the
    chunk's subscribers who carry the added label; return the pairs removed. Two statements at most.

    Run in the chunk's transaction, under the bulk lock that single changes of exclusive labels also wait for.
    """
    exclusive = getattr(operation, "exclusive_label_ids", None)
    if exclusive is None:  # an undo's chunk, which did not read its labels
        labels = list(operation.labels.values_list("pk", "group__exclusive"))
        exclusive, label_ids = [pk for pk, is_exclusive in labels if is_exclusive], [pk for pk, _ in labels]
    else:
        label_ids = list(operation.labels.values_list("pk", flat=True)) if exclusive else []
    if not exclusive:
        return []
    given, given_params = _id_list(exclusive)
    ours, ours_params = _id_list(label_ids)
    assignments, label_table = _table(SubscriberLabel), _table(Label)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {assignments} WHERE (subscriber_id, label_id) IN (
                SELECT other.subscriber_id, other.label_id
                FROM {assignments} AS mine
                JOIN {label_table} AS l ON l.id = mine.label_id
                JOIN {assignments} AS other ON other.subscriber_id = mine.subscriber_id
                JOIN {label_table} AS same ON same.id = other.label_id AND same.group_id = l.group_id
                WHERE mine.label_id IN {given} AND mine.subscriber_id > %s AND mine.subscriber_id <= %s
                  AND other.label_id NOT IN {ours}
            )
            RETURNING subscriber_id, label_id
            """,
            [*given_params, low, high, *ours_params],
        )
        return sorted(cursor.fetchall())


def _record_displaced(operation: LabelOperation, displaced: list[tuple[int, int]], now) -> None:
    """Record labels an addition took away for exclusivity, as a removal of their own beside `operation`.

    That removal has the source "exclusive group" and names the addition in its
    `filters` (`exclusive_for`); made on first use, finished from the start (it has
    no chunks of its own) and growing with each chunk; Bulk changes can undo it.
    """
    if not displaced:
        return
    removal = LabelOperation.objects.filter(
        source=LabelSource.EXCLUSIVE_GROUP, filters__exclusive_for=operation.pk
    ).first()
    if removal is None:
        removal = LabelOperation.objects.create(
            kind=LabelOperation.Kind.REMOVE,
            source=LabelSource.EXCLUSIVE_GROUP,
            status=LabelOperation.Status.DONE,
            filters={"filters": {}, "ids": [], "exclusive_for": operation.pk},
            created_by=operation.created_by,
            total_count=0,
            max_subscriber_id=0,
            last_subscriber_id=0,
            created_at=now,
            started_at=now,
            finished_at=now,
        )
    _record_members(removal, displaced)
    label_ids = sorted({label_id for _, label_id in displaced})
    known = set(removal.labels.values_list("pk", flat=True))
    if set(label_ids) - known:
        removal.labels.add(*label_ids)
        removal.label_names = list(removal.labels.order_by("name").values_list("name", flat=True))
    subscriber_ids = sorted({subscriber_id for subscriber_id, _ in displaced})
    events.labels_changed(subscriber_ids, removed=label_ids, operation=removal, batch=f"operation-{removal.pk}")
    removal.changed_count += len(displaced)
    removal.changed_subscribers += len(subscriber_ids)
    removal.selected_count += len(subscriber_ids)
    removal.total_count += len(subscriber_ids)
    removal.finished_at = now
    removal.save()


def _chunk_selection(operation: LabelOperation, low: int, high: int) -> tuple[str, list]:
    """SQL for the ids of the chunk's subscribers: the stored filter (or, for a label deletion, its carriers)."""
    if operation.delete_label_id is not None:
        # Its carriers by label id, not the stored filter by name: a rename meanwhile changes nothing.
        selection = SubscriberLabel.objects.filter(label_id=operation.delete_label_id).values("subscriber_id")
        return selection.filter(subscriber_id__gt=low, subscriber_id__lte=high).query.sql_with_params()
    selection = subscribers_matching(operation.filters, ids_after=low, ids_up_to=high).values("pk")
    return selection.query.sql_with_params()


def _label_ids_of(operation: LabelOperation) -> list[int]:
    labels = list(operation.labels.values_list("pk", "group__exclusive"))
    if len(labels) < len(operation.label_names):
        raise ValueError(gettext("A label of this change was deleted while it ran; it stopped there."))
    # Read with them, for the chunk's exclusivity (_displace_in_chunk): no query of its own.
    operation.exclusive_label_ids = [pk for pk, exclusive in labels if exclusive]
    return [pk for pk, _ in labels]


def _change_chunk_in_one_statement(operation: LabelOperation, low: int, high: int, now):
    """PostgreSQL: select the chunk, change its assignments and record them in one statement.

    The ids never travel to Python and back (measured: a third of the remove's time at 500,000).
    Returns (subscribers in the chunk, assignments changed, subscriber ids changed, label ids changed).
    """
    selection, params = _chunk_selection(operation, low, high)
    label_ids = _label_ids_of(operation)
    assignments, members = _table(SubscriberLabel), _table(LabelOperationMember)
    if operation.kind == LabelOperation.Kind.ADD:
        change = f"""
            INSERT INTO {assignments} (subscriber_id, label_id, assigned_at, assigned_by_id)
            SELECT chunk.id, label.id, %s, %s FROM chunk CROSS JOIN unnest(%s::bigint[]) AS label(id)
            ORDER BY chunk.id, label.id
            ON CONFLICT (label_id, subscriber_id) DO NOTHING
            RETURNING subscriber_id, label_id
        """
        change_params = [connection.ops.adapt_datetimefield_value(now), operation.created_by_id, label_ids]
    else:
        change = f"""
            DELETE FROM {assignments} AS assigned USING chunk
            WHERE assigned.subscriber_id = chunk.id AND assigned.label_id = ANY(%s::bigint[])
              AND assigned.subscriber_id > %s AND assigned.subscriber_id <= %s
            RETURNING assigned.subscriber_id, assigned.label_id
        """
        change_params = [label_ids, low, high]
    with connection.cursor() as cursor:
        if operation.kind == LabelOperation.Kind.REMOVE:
            # The planner guesses a few rows for the chunk (its id range appears twice) and probes the
            # assignments once per subscriber: 19 ms a chunk of 2,500 against 3 ms for one hash join.
            cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
        cursor.execute(
            f"""
            WITH chunk(id) AS ({selection}),
            changed AS ({change}),
            recorded AS (
                INSERT INTO {members} (operation_id, subscriber_id, label_id)
                SELECT %s, subscriber_id, label_id FROM changed
            )
            SELECT (SELECT count(*) FROM chunk), (SELECT count(*) FROM changed),
                   (SELECT array_agg(DISTINCT subscriber_id) FROM changed),
                   (SELECT array_agg(DISTINCT label_id) FROM changed)
            """,
            [*params, *change_params, operation.pk],
        )
        seen, changed_count, subscriber_ids, changed_labels = cursor.fetchone()
    return seen, changed_count, sorted(subscriber_ids or []), sorted(changed_labels or [])


def _candidates(operation: LabelOperation, low: int, high: int) -> tuple[int, list[tuple[int, int]]]:
    """The chunk's subscribers (how many) and the (subscriber, label) pairs the operation would change."""
    if operation.undoes_id is not None:
        members = LabelOperationMember.objects.filter(
            operation_id=operation.undoes_id, subscriber_id__gt=low, subscriber_id__lte=high
        )
        if operation.kind == LabelOperation.Kind.ADD:
            # Giving back removed labels: only to subscribers that still exist, and only labels that still exist
            # (one deleted while the undo runs leaves the operation's labels; inserting it would fail every retry).
            members = members.filter(
                subscriber_id__in=Subscriber.objects.filter(pk__gt=low, pk__lte=high).values("pk"),
                label_id__in=operation.labels.values("pk"),
            )
        pairs = list(members.values_list("subscriber_id", "label_id"))
        return len({subscriber_id for subscriber_id, _ in pairs}), pairs
    label_ids = _label_ids_of(operation)
    selection, params = _chunk_selection(operation, low, high)
    with connection.cursor() as cursor:
        cursor.execute(selection, params)
        ids = [row[0] for row in cursor.fetchall()]
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
    already = LabelOperation.objects.filter(delete_label=label).exclude(status__in=LabelOperation.FINISHED).first()
    if already is not None:
        return already  # asked twice while the first deletion is still under way
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


# --- Subscriber imports ---------------------------------------------------------------------------
#
# An import (`SubscriberImport`) runs in two stages of short transactions, each recording how far it
# got with the work it did: *checking* reads CHUNK_ROWS rows of the stored file (subscribers.imports
# parses and checks them, outside the transaction), then stages the good ones in one COPY (PostgreSQL)
# or executemany (SQLite) and records the rejected ones; *importing* applies a chunk of staged rows to
# the subscribers with a few set-based statements, and their labels through `_apply` and
# `_record_members` as bulk changes do. The label changes are recorded as bulk operations with the
# source "import" (one for additions, one for removals), so the subscriber's history shows them and
# Bulk changes can undo them. A dry run goes through the same chunks and counts instead of writing.
# Webhooks hear of each chunk once (`subscribers.imported`, with the ids it created and changed, and
# `subscriber.labels_changed`), never once per subscriber. `remove_old_import_files` deletes the files
# of imports never started or long ended.

# The bulk sweep resumes a label operation whose heartbeat stopped by running its chunks over its
# stored selection. An import's operations have no selection of their own (their chunks are the
# import's): while the import runs, their heartbeat is set this far ahead, past any sweep.
IMPORT_OWNS_OPERATION = timedelta(days=36_500)


class ImportBusy(Exception):
    """The operator already runs an import: one at a time each. `running` is that import."""

    def __init__(self, running: SubscriberImport | None):
        super().__init__(f"Import {running.pk if running else '?'} is still running.")
        self.running = running


def start_subscriber_import(
    job: SubscriberImport, *, dry_run: bool, by=None, language: str = "en", background: bool = True
) -> SubscriberImport:
    """Run an uploaded, configured import (or its dry run) from its first row: queued for a worker.

    Whatever an earlier run of the same file left (a dry run's report) is cleared
    first. Raises ImportBusy when `by` is running another import. With
    `background=False` nothing is queued: the caller runs `run_subscriber_import`.
    """
    now = timezone.now()
    with transaction.atomic():
        job = SubscriberImport.objects.select_for_update().get(pk=job.pk)
        if job.status in SubscriberImport.UNFINISHED:
            raise ImportBusy(job)
        _delete_staged(job.pk)
        SubscriberImportProblem.objects.filter(job=job).delete()
        for name, value in {
            "status": SubscriberImport.Status.PENDING,
            "stage": SubscriberImport.Stage.READING,
            "dry_run": dry_run,
            "language": language,
            "created_by": by,
            "read_offset": job.data_offset,
            "last_row": 1,
            "merged_row": 1,  # the header's row: the subscribers start on row 2
            "new_labels": [],
            "add_operation": None,
            "remove_operation": None,
            "staging_cleared": False,
            "error": "",
            "started_at": None,
            "finished_at": None,
            "cancel_requested_at": None,
            "cancelled_by": None,
            "heartbeat_at": now,
        }.items():
            setattr(job, name, value)
        for name in (
            "rows_read",
            "staged_count",
            "rows_merged",
            "created_count",
            "updated_count",
            "unchanged_count",
            "rejected_count",
            "duplicate_count",
            "labels_added",
            "labels_removed",
        ):
            setattr(job, name, 0)
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:
            raise ImportBusy(
                SubscriberImport.objects.filter(created_by=by, status__in=SubscriberImport.UNFINISHED).first()
            ) from None
        if background:
            transaction.on_commit(lambda: continue_subscriber_import.enqueue(job.pk))
    return job


def run_subscriber_import(job_id: int, *, after_chunk=None) -> SubscriberImport:
    """Run an import's remaining chunks until it is done, cancelled or failed; return it.

    Safe to call on any import in any state, by several workers at once: each
    chunk locks the import's row and goes on from the progress it reads there.
    `after_chunk`, if given, is called with the import's id after each pass.
    """
    more = True
    while more:
        more = _import_chunk_with_retries(job_id)
        if after_chunk is not None:
            after_chunk(job_id)
    _clear_staging(job_id)
    return SubscriberImport.objects.get(pk=job_id)


@task()
def continue_subscriber_import(job_id: int) -> None:
    """Background: run (or resume) an import. Queued by `start_subscriber_import` and the sweep."""
    run_subscriber_import(job_id)


def cancel_subscriber_import(job: SubscriberImport, *, by) -> bool:
    """Stop a waiting or running import after its current chunk; what it imported stays. False if it had ended."""
    asked = (
        SubscriberImport.objects.filter(pk=job.pk, status__in=SubscriberImport.UNFINISHED)
        .filter(cancel_requested_at__isnull=True)
        .update(cancel_requested_at=timezone.now(), cancelled_by=by)
    )
    if asked:
        # Marks it cancelled now, after waiting for the chunk a worker may be running.
        with transaction.atomic():
            locked = SubscriberImport.objects.select_for_update().get(pk=job.pk)
            if not locked.is_finished:
                _end_import(locked, SubscriberImport.Status.CANCELLED, timezone.now())
                locked.save()
        _clear_staging(job.pk)
    return bool(asked)


def resume_stalled_imports(now=None) -> list[int]:
    """Queue again every unfinished import whose chunks stopped STALE_AFTER ago (its worker died).

    Run periodically by every `manage.py db_worker`, as `resume_stalled_operations`
    is; also deletes the staged rows a finished import left when its worker
    died just after its last chunk. Returns the ids queued.
    """
    now = now or timezone.now()
    unfinished = SubscriberImport.objects.filter(
        status__in=SubscriberImport.UNFINISHED, heartbeat_at__lt=now - STALE_AFTER
    )
    queued = []
    for job_id in unfinished.values_list("pk", flat=True):
        if unfinished.filter(pk=job_id).update(heartbeat_at=now):
            continue_subscriber_import.enqueue(job_id)
            queued.append(job_id)
    if queued:
        logger.warning("Resumed stalled subscriber imports %s", queued)
    for job_id in SubscriberImport.objects.filter(
        status__in=SubscriberImport.FINISHED, staging_cleared=False
    ).values_list("pk", flat=True):
        _clear_staging(job_id)
    return queued


# Old imports whose files one pass of `remove_old_import_files` removes at most (the sweep runs every few seconds).
OLD_IMPORTS_PER_SWEEP = 100


def remove_old_import_files(now=None) -> dict[str, int]:
    """Delete the uploaded files of imports never started, or ended, IMPORT_KEEP_HOURS ago, and their staged rows.

    Run periodically by every `manage.py db_worker` (and by `manage.py
    remove_old_import_files`). An import never started is deleted with its file
    (what a dry run reported goes too); an ended import keeps its report and its
    counts, and loses its file (so its rejected-rows download); a file in
    IMPORT_DIR no import names (its upload was interrupted) is deleted once as
    old. Files go after the commit, so a file is never missing for an import
    that still names it. Returns {"drafts": n, "files": n, "strays": n}.
    """
    now = now or timezone.now()
    before = now - timedelta(hours=settings.IMPORT_KEEP_HOURS)
    Status = SubscriberImport.Status
    removed, going = {"drafts": 0, "files": 0, "strays": 0}, set()
    old = SubscriberImport.objects.filter(
        Q(status=Status.DRAFT, created_at__lt=before) | Q(status__in=SubscriberImport.FINISHED, finished_at__lt=before)
    ).exclude(file_name="")
    for job_id in old.values_list("pk", flat=True)[:OLD_IMPORTS_PER_SWEEP]:
        with transaction.atomic():
            job = old.select_for_update().filter(pk=job_id).first()
            if job is None:  # started, or cleaned up by another worker, meanwhile
                continue
            path = imports.import_dir() / job.file_name
            transaction.on_commit(lambda path=path: path.unlink(missing_ok=True))
            going.add(path.name)
            _delete_staged(job.pk)
            if job.status == Status.DRAFT:
                SubscriberImportProblem.objects.filter(job=job).delete()
                job.delete()
                removed["drafts"] += 1
            else:
                job.file_name, job.staging_cleared = "", True
                job.save(update_fields=["file_name", "staging_cleared"])
                removed["files"] += 1
    strays = [
        path
        for path in imports.import_dir().glob("import-*")
        if path.name not in going and path.is_file() and path.stat().st_mtime < before.timestamp()
    ]
    named = SubscriberImport.objects.filter(file_name__in=[path.name for path in strays])
    named = set(named.values_list("file_name", flat=True))
    for path in strays:
        if path.name not in named:
            path.unlink(missing_ok=True)
            removed["strays"] += 1
    if any(removed.values()):
        logger.info("Removed old import files: %s", removed)
    return removed


def _import_chunk_with_retries(job_id: int) -> bool:
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return _import_chunk(job_id)
        except (OperationalError, IntegrityError):
            # A deadlock, a label created by someone else meanwhile: the chunk rolled back whole.
            if attempt == CHUNK_ATTEMPTS:
                _fail_import(job_id, "The database refused a chunk three times; see the server's log.")
                raise
            logger.warning("Chunk of subscriber import %s failed, trying again", job_id, exc_info=True)
        except (OSError, imports.FileProblem) as error:
            logger.exception("Subscriber import %s cannot read its file", job_id)
            _fail_import(job_id, str(error))
            return False
    return False


def _fail_import(job_id: int, error: str) -> None:
    with transaction.atomic():
        job = SubscriberImport.objects.select_for_update().get(pk=job_id)
        if not job.is_finished:
            job.error = error
            _end_import(job, SubscriberImport.Status.FAILED, timezone.now())
            job.save()


def _import_chunk(job_id: int) -> bool:
    """Do the next chunk of an import in one transaction; return whether there is more to do."""
    job = SubscriberImport.objects.get(pk=job_id)
    if job.is_finished:
        return False
    with translation.override(job.language):
        batch = None
        if job.stage == SubscriberImport.Stage.READING and not job.cancel_requested_at:
            # Parsed and checked before the transaction: no lock is held meanwhile.
            batch = imports.read_batch(job, imports.RowChecker(job))
        with transaction.atomic():
            locked = SubscriberImport.objects.select_for_update().get(pk=job_id)
            now = timezone.now()
            if locked.is_finished:
                return False
            if locked.cancel_requested_at or _operations_cancelled(locked):
                _end_import(locked, SubscriberImport.Status.CANCELLED, now)
                locked.save()
                return False
            if locked.status == SubscriberImport.Status.PENDING:
                locked.status, locked.started_at = SubscriberImport.Status.RUNNING, now
            if locked.stage == SubscriberImport.Stage.READING:
                if batch is not None and (locked.read_offset, locked.last_row) == (job.read_offset, job.last_row):
                    _stage_batch(locked, batch, now)
                # else another worker went on meanwhile: this one reads again from where it got.
            else:
                _merge_chunk(locked, now)
            locked.heartbeat_at = now
            locked.save()
            return not locked.is_finished


def _operations_cancelled(job: SubscriberImport) -> bool:
    """Whether someone cancelled one of the import's label operations on the Bulk changes page."""
    ids = [pk for pk in (job.add_operation_id, job.remove_operation_id) if pk]
    return bool(ids) and LabelOperation.objects.filter(pk__in=ids, cancel_requested_at__isnull=False).exists()


# Checking: stage the good rows, record the rejected ones.


def _stage_batch(job: SubscriberImport, batch: imports.Batch, now) -> None:
    staged, rejected = list(batch.rows), list(batch.rejected)
    if job.has_labels:
        staged, rejected = _resolve_labels(job, staged, rejected)
    else:
        for row in staged:
            row.label_ids = None
    _insert_rows(
        SubscriberImportRow,
        ["job_id", "file_row", "file_offset", *imports.STAGED_COLUMNS, "labels"],
        [(job.pk, row.row, row.offset, *row.staged, _json_ids(row.label_ids)) for row in staged],
    )
    _record_problems(
        job,
        [
            (row.row, row.offset, ", ".join(dict.fromkeys(column for column, _ in row.errors if column)), row.errors)
            for row in rejected
        ],
    )
    job.read_offset, job.last_row = batch.end, batch.last_row
    job.rows_read += batch.read
    job.rejected_count += len(rejected)
    if batch.finished:
        _finish_reading(job, now)


def _resolve_labels(job, staged, rejected):
    """Turn each row's label names into label ids: unknown ones created (or, in a dry run, counted) or rejected."""
    index = imports.LabelIndex()
    if job.dry_run:  # labels a dry run would create stand for themselves with negative ids
        for number, name in enumerate(job.new_labels, start=1):
            index.add(-number, name, name)
    refused = {}
    kept = []
    for row in staged:
        row.label_ids = []
        for name in row.label_names or ():
            pk = index.find(name)
            if pk is None and name not in refused:
                pk, refused[name] = _new_label(job, name, index)
            if pk is None:
                row.errors.append(("labels", refused[name]))
            elif pk not in row.label_ids:
                row.label_ids.append(pk)
        (rejected if row.errors else kept).append(row)
    kept = _reject_exclusive_clashes(kept, rejected)
    rejected.sort(key=lambda row: row.row)
    return kept, rejected


def _reject_exclusive_clashes(kept, rejected):
    """Move to `rejected` the rows naming two labels of one exclusive group (one query for the chunk)."""
    groups = exclusive_groups_of({pk for row in kept for pk in row.label_ids if pk > 0})
    if not groups:
        return kept
    clean = []
    titles = {}
    for row in kept:
        clashing = clashing_sets(row.label_ids, groups)
        if clashing:
            if not titles:
                titles = dict(Label.objects.filter(pk__in=set().union(*groups.values())).values_list("pk", "title"))
            row.errors.append(("labels", clash_message(sorted(titles[pk] for pk in ids) for ids in clashing)))
            rejected.append(row)
        else:
            clean.append(row)
    return clean


def _new_label(job, text, index) -> tuple[int | None, str]:
    """Create the label a file names (through the Add dialog's form), or say why the row is refused."""
    if job.mode == SubscriberImport.Mode.LABELS_REMOVE or not job.create_labels:
        return None, gettext("There is no label named or titled “%(name)s”.") % {"name": text}
    form = LabelForm(data={"title": text, "name": text if re.fullmatch(NAME_PATTERN, text) else ""})
    if form.is_valid():
        if job.dry_run:
            job.new_labels.append(text)
            index.add(-len(job.new_labels), text, text)
            return -len(job.new_labels), ""
        label = label_actions.create_label(form)
        if label is not None:
            job.new_labels.append(label.name)
            index.add(label.pk, label.name, label.title)
            return label.pk, ""
        # Someone created it meanwhile: raising rolls the chunk back, and its next try finds the label.
        raise IntegrityError(f"Label {text!r} was created meanwhile")
    errors = " ".join(message for messages in form.errors.values() for message in messages)
    return None, gettext("The label “%(name)s” cannot be created: %(errors)s") % {
        "name": text,
        "errors": errors,
    }


def _json_ids(ids: list[int] | None) -> str | None:
    """A JSON array of label ids, written directly: json.dumps was a tenth of the time spent checking rows."""
    return None if ids is None else f"[{','.join(map(str, ids))}]"


def _record_problems(job, problems, kind=SubscriberImportProblem.Kind.REJECTED) -> None:
    """Store rejected (or repeated) rows: (row, offset, columns, [(column, reason)] or reason)."""
    SubscriberImportProblem.objects.bulk_create(
        SubscriberImportProblem(
            job=job,
            row=row,
            offset=offset,
            kind=kind,
            columns=columns[:500],
            reason=reasons if isinstance(reasons, str) else " ".join(reason for _, reason in reasons),
        )
        for row, offset, columns, reasons in problems
    )


def _insert_rows(model, columns: list[str], rows: list[tuple]) -> None:
    """Insert many rows at once: COPY on PostgreSQL, one executemany on SQLite."""
    if not rows:
        return
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {_table(model)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {_table(model)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})",
                [[adapt(value) if hasattr(value, "tzinfo") else value for value in row] for row in rows],
            )


def _finish_reading(job: SubscriberImport, now) -> None:
    """The whole file is checked: keep the last of repeated rows, then start importing (or end: nothing to do)."""
    staging = _table(SubscriberImportRow)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT file_row, file_offset, kept FROM (
                SELECT file_row, file_offset,
                       first_value(file_row) OVER (PARTITION BY channel_id, foreign_id ORDER BY file_row DESC) AS kept
                FROM {staging} WHERE job_id = %s
            ) AS t WHERE file_row <> kept ORDER BY file_row
            """,
            [job.pk],
        )
        repeated = cursor.fetchall()
        for start in range(0, len(repeated), CHUNK_SIZE):
            rows = [row for row, _, _ in repeated[start : start + CHUNK_SIZE]]
            source, params = _pairs_source([(job.pk, row) for row in rows])
            cursor.execute(
                f"DELETE FROM {staging} WHERE (job_id, file_row) IN (SELECT p.s, p.l FROM {source} AS p)", params
            )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {staging} (job_id, file_row, channel_id, foreign_id)")
    repeats = gettext("Row %(row)s is the same subscriber (channel and foreign id): the later row was used.")
    _record_problems(
        job,
        [(row, offset, "", repeats % {"row": kept}) for row, offset, kept in repeated],
        kind=SubscriberImportProblem.Kind.DUPLICATE,
    )
    job.duplicate_count = len(repeated)
    job.staged_count = job.rows_read - job.rejected_count - job.duplicate_count
    job.stage = SubscriberImport.Stage.MERGING
    if not job.staged_count:
        _end_import(job, SubscriberImport.Status.DONE, now)


# Importing: a chunk of staged rows, by row number.


def _merge_chunk(job: SubscriberImport, now) -> None:
    low = job.merged_row
    high = min(low + imports.CHUNK_ROWS, job.last_row)
    staging, people = _table(SubscriberImportRow), _table(Subscriber)
    chunk = "x.job_id = %s AND x.file_row > %s AND x.file_row <= %s"
    params = [job.pk, low, high]
    same_person = "s.foreign_id = x.foreign_id AND s.channel_id = x.channel_id"
    Mode = SubscriberImport.Mode
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A chunk joins its 5,000 staged rows to the subscribers one index probe each. Costing a probe as a
            # random read, the planner preferred hashing the whole subscriber table for every chunk instead: an
            # import then slowed down as it went (measured: 0.3 s a chunk at the start, 0.8 s at 250,000 rows).
            cursor.execute("SET LOCAL enable_hashjoin = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
        if connection.vendor == "postgresql" and job.has_labels:
            # Bulk label chunks take turns with each other (BULK_CHUNK_LOCK): so do the import's.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [BULK_CHUNK_LOCK])
        cursor.execute(f"SELECT count(*) FROM {staging} AS x WHERE {chunk}", params)
        in_chunk, rejected_before = cursor.fetchone()[0], job.rejected_count
        if job.mode == Mode.CREATE:
            _reject_staged(
                job,
                chunk,
                params,
                f"EXISTS (SELECT 1 FROM {people} AS s WHERE {same_person})",
                _exists_already(),
            )
        elif job.mode in (Mode.LABELS_ADD, Mode.LABELS_REMOVE):
            _reject_staged(
                job,
                chunk,
                params,
                f"NOT EXISTS (SELECT 1 FROM {people} AS s WHERE {same_person})",
                gettext("No subscriber has this channel and foreign id."),
            )
        created, updated, created_rows, updated_rows = set(), set(), {}, {}
        if job.mode in (Mode.UPSERT, Mode.CREATE):
            if not job.dry_run:
                created_rows = _insert_new_subscribers(job, cursor, chunk, params, now)
                created = set(created_rows)
                _analyze_as_it_grows(job, cursor, job.created_count + len(created))
            fields = [name for name in imports.PROFILE_COLUMNS if name in job.mapping]
            differs = " OR ".join(f"s.{name} <> x.{name}" for name in fields)
            # Every row of the chunk created just now (a first import): none has anything to update.
            if job.mode == Mode.UPSERT and fields and len(created) < in_chunk:
                # After the insert: a subscriber the bot created meanwhile is updated, ours match already.
                if job.dry_run:
                    updated = set(_profile_changes(cursor, chunk, params, fields, differs))
                else:
                    names = {"first_name", "last_name"} & set(fields)
                    # Both names in the file: the staged search name is the subscriber's (one: see below).
                    search = ", search_name = x.search_name" if len(names) == 2 else ""
                    # SQLite's RETURNING names the updated table's columns unqualified (and only those).
                    mine = "s." if connection.vendor == "postgresql" else ""
                    cursor.execute(
                        f"""
                        UPDATE {people} AS s SET {", ".join(f"{name} = x.{name}" for name in fields)}{search},
                               updated_at = %s
                        FROM {staging} AS x WHERE {chunk} AND {same_person} AND ({differs})
                        RETURNING {mine}id, {mine}channel_id, {mine}foreign_id
                        """,
                        [_db_time(now), *params],
                    )
                    updated_rows = {pk: rest for pk, *rest in cursor.fetchall()}
                    updated = set(updated_rows)
                    if len(names) == 1 and updated:
                        _refresh_search_names(cursor, sorted(updated))
            if not job.dry_run:
                _tell_webhooks_of_chunk(job, (low + 1, high), created_rows, updated_rows, fields)
        # The usual case, labels only added (or none), is one set-based statement; the others go through Python.
        only_adding = not job.replace_labels and job.mode != Mode.LABELS_REMOVE
        if not job.dry_run and (only_adding or not job.has_labels):
            rows = None
            relabelled = _add_staged_labels(job, chunk, params, now) if job.has_labels else set()
        else:
            cursor.execute(
                f"""
                SELECT x.file_row, s.id, x.labels FROM {staging} AS x LEFT JOIN {people} AS s ON {same_person}
                WHERE {chunk} ORDER BY x.file_row
                """,
                params,
            )
            rows = cursor.fetchall()
            relabelled = _merge_labels(job, rows, now) if job.has_labels else set()
    touched = created | updated | relabelled
    if rows is None:  # after the insert, every row left in the chunk has its subscriber, one each
        existing = in_chunk - (job.rejected_count - rejected_before)
        job.unchanged_count += existing - len(touched)
    else:
        existing = [subscriber_id for _, subscriber_id, _ in rows if subscriber_id is not None]
        job.unchanged_count += sum(1 for subscriber_id in existing if subscriber_id not in touched)
        if job.dry_run:
            job.created_count += len(rows) - len(existing)
    job.created_count += len(created)
    job.updated_count += len((updated | relabelled) - created)
    job.rows_merged += in_chunk
    operations = [pk for pk in (job.add_operation_id, job.remove_operation_id) if pk]
    if operations:  # Bulk changes shows how far they got: the subscribers the import went through
        applied = job.created_count + job.updated_count + job.unchanged_count
        LabelOperation.objects.filter(pk__in=operations).update(selected_count=applied)
    job.merged_row = high
    if high >= job.last_row:
        _end_import(job, SubscriberImport.Status.DONE, now)


# The subscriber count at which each import (in this process) last had the tables analysed.
_ANALYZED_AT: dict[int, int] = {}


def _analyze_as_it_grows(job: SubscriberImport, cursor, created: int) -> None:
    """ANALYZE the subscribers once the import's insert has doubled what it had created at the last ANALYZE.

    Run between the chunk's insert and its joins. Without fresh statistics the
    planner took the growing subscriber table for a few rows and probed the
    chunk's staged rows once for each subscriber (a chunk of a fresh import took
    seconds); autovacuum comes later than that. A million subscribers cost about
    eight ANALYZEs, each a fraction of a second (it reads a sample).
    """
    if connection.vendor != "postgresql":
        return
    last = _ANALYZED_AT.get(job.pk, 0)
    if created >= 2 * max(last, imports.CHUNK_ROWS // 2):
        # The size and the columns the chunk joins on are what the planner needs here: the other columns'
        # statistics wait for the import's end (a column list makes each ANALYZE a fraction cheaper).
        cursor.execute(f"ANALYZE {_table(Subscriber)} (foreign_id, channel_id)")
        _ANALYZED_AT[job.pk] = created


def _exists_already() -> str:
    return gettext("A subscriber with this channel and foreign id exists already: “create only” leaves them alone.")


def _db_time(moment):
    return connection.ops.adapt_datetimefield_value(moment)


def _foreign_id_column(job) -> str:
    return job.header[job.mapping.index("foreign_id")] if "foreign_id" in job.mapping else "foreign_id"


def _reject_staged(job, chunk: str, params: list, condition: str, reason: str, extra: list = ()) -> None:
    """Take the chunk's staged rows meeting `condition` out of the import, as rejected for `reason`."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_table(SubscriberImportRow)} AS x WHERE {chunk} AND {condition} "
            "RETURNING file_row, file_offset",
            [*params, *extra],
        )
        rejected = sorted(cursor.fetchall())
    column = _foreign_id_column(job)
    _record_problems(job, [(row, offset, column, reason) for row, offset in rejected])
    job.rejected_count += len(rejected)


def _insert_new_subscribers(job, cursor, chunk: str, params: list, now) -> dict[int, tuple[int, str]]:
    """Create the chunk's subscribers that do not exist yet, in file order; return {id: (channel id, foreign id)}.

    Dates come from the file when it has them (created and updated now otherwise).
    In "create only" mode, a subscriber the bot created between the check and the
    insert makes its row rejected like any existing one.
    """
    people, staging = _table(Subscriber), _table(SubscriberImportRow)
    same_person = "s.foreign_id = x.foreign_id AND s.channel_id = x.channel_id"
    cursor.execute(
        f"""
        INSERT INTO {people} (channel_id, foreign_id, first_name, last_name, gender, locale, timezone, country,
                              search_name, avatar_url, created_at, updated_at, last_seen_at)
        SELECT x.channel_id, x.foreign_id, x.first_name, x.last_name, x.gender, x.locale, x.timezone, x.country,
               x.search_name, '', COALESCE(x.created_at, %s), COALESCE(x.updated_at, %s), x.last_seen_at
        FROM {staging} AS x WHERE {chunk} AND NOT EXISTS (SELECT 1 FROM {people} AS s WHERE {same_person})
        ORDER BY x.file_row
        ON CONFLICT (foreign_id, channel_id) DO NOTHING
        RETURNING id, channel_id, foreign_id
        """,
        [_db_time(now), _db_time(now), *params],
    )
    created = {pk: (channel_id, foreign_id) for pk, channel_id, foreign_id in cursor.fetchall()}
    if job.mode == SubscriberImport.Mode.CREATE:
        cursor.execute(f"SELECT count(*) FROM {staging} AS x WHERE {chunk}", params)
        if cursor.fetchone()[0] > len(created):
            ours, ids = _id_list(sorted(created))
            _reject_staged(
                job,
                chunk,
                params,
                f"NOT EXISTS (SELECT 1 FROM {people} AS s WHERE {same_person} AND s.id IN {ours})",
                _exists_already(),
                ids,
            )
    return created


def _tell_webhooks_of_chunk(job, rows: tuple[int, int], created: dict, updated: dict, fields: list[str]) -> None:
    """One subscribers.imported for the chunk (not one event per subscriber), when an endpoint listens.

    `created` and `updated` are {id: (channel id, foreign id)}, as the chunk's statements returned them.
    """
    listeners = events.import_listeners()
    if not listeners or not (created or updated):
        return
    channels = dict(Channel.objects.values_list("pk", "name"))

    def listed(found):
        return [(pk, channels.get(channel, ""), foreign_id) for pk, (channel, foreign_id) in sorted(found.items())]

    events.subscribers_imported(
        job.pk,
        rows=rows,
        created=listed(created),
        updated=listed({pk: row for pk, row in updated.items() if pk not in created}),
        fields=fields,
        endpoints=listeners,
    )


def _refresh_search_names(cursor, subscriber_ids: list[int]) -> None:
    """Write the search name of subscribers whose first or last name (not both) an import changed.

    The file gave one of the two names, so the staged search name (of that name alone) is not theirs:
    it is computed again from both, in Python, as every other writer computes it.
    """
    people = _table(Subscriber)
    ours, ids = _id_list(subscriber_ids)
    cursor.execute(f"SELECT id, first_name, last_name FROM {people} WHERE id IN {ours}", ids)
    cursor.executemany(
        f"UPDATE {people} SET search_name = %s WHERE id = %s",
        [(search_name(first, last), pk) for pk, first, last in cursor.fetchall()],
    )


def _id_list(ids: list[int]) -> tuple[str, list]:
    """A subquery of these ids, sent as one parameter."""
    if connection.vendor == "postgresql":
        return "(SELECT unnest(%s::bigint[]))", [ids]
    return "(SELECT value FROM json_each(%s))", [json.dumps(ids)]


def _profile_changes(cursor, chunk: str, params: list, fields: list[str], differs: str) -> dict[int, list[str]]:
    """{subscriber id: the profile fields the chunk's rows change}, for a dry run and for webhooks."""
    cursor.execute(
        f"""
        SELECT s.id, {", ".join(f"s.{name}" for name in fields)}, {", ".join(f"x.{name}" for name in fields)}
        FROM {_table(SubscriberImportRow)} AS x JOIN {_table(Subscriber)} AS s
             ON s.foreign_id = x.foreign_id AND s.channel_id = x.channel_id
        WHERE {chunk} AND ({differs})
        """,
        params,
    )
    width = len(fields)
    return {
        row[0]: [
            name for name, old, new in zip(fields, row[1 : width + 1], row[width + 1 :], strict=True) if old != new
        ]
        for row in cursor.fetchall()
    }


def _merge_labels(job: SubscriberImport, rows: list[tuple], now) -> set[int]:
    """Apply (or count, in a dry run) the labels of a chunk's rows; return the subscribers whose labels change.

    `rows` are (row, subscriber id or None when not created yet, label ids). The
    file's labels are added; in "replace" mode, the subscriber's other labels are
    removed; in "remove" mode, the file's labels are removed.
    """
    Mode, Kind = SubscriberImport.Mode, LabelOperation.Kind
    wanted, subscribers, fresh = set(), set(), 0
    for _row, subscriber_id, labels in rows:
        label_ids = json.loads(labels) if isinstance(labels, str) else labels
        if subscriber_id is None:  # a dry run's new subscriber: gets every label of the row
            fresh += len(label_ids)
            continue
        subscribers.add(subscriber_id)
        wanted.update((subscriber_id, label_id) for label_id in label_ids)
    removing_only = job.mode == Mode.LABELS_REMOVE
    replacing = job.replace_labels and job.mode in (Mode.UPSERT, Mode.CREATE)
    if job.dry_run:
        current = SubscriberLabel.objects.filter(subscriber_id__in=sorted(subscribers))
        current = set(current.values_list("subscriber_id", "label_id"))
        if removing_only:
            added, removed = set(), wanted & current
        else:
            added = wanted - current  # labels a dry run would create have negative ids: never current
            removed = {pair for pair in current if pair not in wanted} if replacing else set()
        job.labels_added += len(added) + fresh
        job.labels_removed += len(removed)
        return {subscriber_id for subscriber_id, _ in added | removed}
    touched = set()
    if not removing_only:
        added = _apply(Kind.ADD, sorted(wanted), by_id=job.created_by_id, now=now)
        _import_label_changes(job, Kind.ADD, added, now)
        job.labels_added += len(added)
        _displace_for_import(job, added, now)
        touched.update(subscriber_id for subscriber_id, _ in added)
    if removing_only or replacing:
        if removing_only:
            targets = wanted
        else:
            current = SubscriberLabel.objects.filter(subscriber_id__in=sorted(subscribers))
            targets = {pair for pair in current.values_list("subscriber_id", "label_id") if pair not in wanted}
        removed = _apply(Kind.REMOVE, sorted(targets))
        _import_label_changes(job, Kind.REMOVE, removed, now)
        job.labels_removed += len(removed)
        touched.update(subscriber_id for subscriber_id, _ in removed)
    return touched


def _add_staged_labels(job: SubscriberImport, chunk: str, params: list, now) -> set[int]:
    """Give the chunk's subscribers their rows' labels, recorded as the import's bulk addition: set-based.

    One statement inserts the assignments from the staged rows (labels deleted
    meanwhile are skipped) and, on PostgreSQL, records the members in the same
    statement; only the pairs that changed come back, for the counts and webhooks.
    Returns the subscribers whose labels changed.
    """
    operation = _import_operation(job, LabelOperation.Kind.ADD, now)
    staging, people, labels = _table(SubscriberImportRow), _table(Subscriber), _table(Label)
    if connection.vendor == "postgresql":
        each, label_id = "CROSS JOIN LATERAL jsonb_array_elements_text(x.labels) AS e(value)", "e.value::bigint"
    else:
        each, label_id = ", json_each(x.labels) AS e", "e.value"
    insert = f"""
        INSERT INTO {_table(SubscriberLabel)} (subscriber_id, label_id, assigned_at, assigned_by_id)
        SELECT s.id, l.id, %s, %s
        FROM {staging} AS x JOIN {people} AS s ON s.foreign_id = x.foreign_id AND s.channel_id = x.channel_id
        {each} JOIN {labels} AS l ON l.id = {label_id}
        WHERE {chunk} ORDER BY l.id, s.id
        ON CONFLICT (label_id, subscriber_id) DO NOTHING
        RETURNING subscriber_id, label_id
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""
                WITH added AS ({insert}), recorded AS (
                    INSERT INTO {_table(LabelOperationMember)} (operation_id, subscriber_id, label_id)
                    SELECT %s, subscriber_id, label_id FROM added
                )
                SELECT subscriber_id, label_id FROM added
                """,
                [_db_time(now), job.created_by_id, *params, operation.pk],
            )
            added = cursor.fetchall()
        else:
            cursor.execute(insert, [_db_time(now), job.created_by_id, *params])
            added = cursor.fetchall()
            _record_members(operation, added)
    _import_label_changes(job, LabelOperation.Kind.ADD, added, now, recorded=True)
    job.labels_added += len(added)
    _displace_for_import(job, added, now)
    return {subscriber_id for subscriber_id, _ in added}


def _displace_for_import(job: SubscriberImport, added: list[tuple[int, int]], now) -> None:
    """Labels of exclusive groups an import gave take the groups' other labels away, recorded beside its addition."""
    if added and exclusive_groups_of(sorted({label_id for _, label_id in added})):
        displaced = _displace(added)
        _record_displaced(job.add_operation, displaced, now)
        job.labels_removed += len(displaced)


def _import_operation(job: SubscriberImport, kind: str, now) -> LabelOperation:
    """The import's bulk operation of this kind (recorded with the source "import"), made on first use."""
    attribute = "add_operation" if kind == LabelOperation.Kind.ADD else "remove_operation"
    operation = getattr(job, attribute)
    if operation is None:
        operation = LabelOperation.objects.create(
            kind=kind,
            source=LabelSource.IMPORT,
            status=LabelOperation.Status.RUNNING,
            # Selects nobody, should anything but the import ever run it: its chunks are the import's.
            filters={"filters": {}, "ids": [], "import": job.pk},
            created_by=job.created_by,
            total_count=job.staged_count,
            max_subscriber_id=0,
            last_subscriber_id=0,
            created_at=now,
            started_at=now,
            heartbeat_at=now + IMPORT_OWNS_OPERATION,
        )
        setattr(job, attribute, operation)
    return operation


def _import_label_changes(job: SubscriberImport, kind: str, changed: list[tuple[int, int]], now, *, recorded=False):
    """Record what a chunk changed in the import's label operation of this kind, and tell webhooks."""
    attribute = "add_operation" if kind == LabelOperation.Kind.ADD else "remove_operation"
    if getattr(job, attribute) is None and not changed:
        return
    operation = _import_operation(job, kind, now)
    if changed:
        if not recorded:
            _record_members(operation, changed)
        label_ids = sorted({label_id for _, label_id in changed})
        if set(label_ids) - set(operation.labels.values_list("pk", flat=True)):
            operation.labels.add(*label_ids)
            operation.label_names = list(operation.labels.order_by("name").values_list("name", flat=True))
        subscriber_ids = sorted({subscriber_id for subscriber_id, _ in changed})
        events.labels_changed(
            subscriber_ids,
            added=label_ids if kind == LabelOperation.Kind.ADD else [],
            removed=label_ids if kind == LabelOperation.Kind.REMOVE else [],
            operation=operation,
            batch=f"operation-{operation.pk}",
        )
        operation.changed_count += len(changed)
        operation.changed_subscribers += len(subscriber_ids)
        operation.save(update_fields=["changed_count", "changed_subscribers", "label_names"])


def _end_import(job: SubscriberImport, status: str, now) -> None:
    """Mark the import ended, and its label operations with it (those that changed nothing are deleted)."""
    job.status, job.finished_at = status, now
    for attribute in ("add_operation", "remove_operation"):
        operation = getattr(job, attribute)
        if operation is None:
            continue
        if not operation.changed_count:
            setattr(job, attribute, None)
            operation.delete()
            continue
        done = status == SubscriberImport.Status.DONE
        operation.status = LabelOperation.Status.DONE if done else LabelOperation.Status.CANCELLED
        operation.finished_at = operation.heartbeat_at = now
        operation.save(update_fields=["status", "finished_at", "heartbeat_at"])
    changed = job.created_count + job.labels_added + job.labels_removed
    if not job.dry_run and changed >= ANALYZE_AFTER and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_table(Subscriber)}")
            cursor.execute(f"ANALYZE {_table(SubscriberLabel)}")


def _delete_staged(job_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table(SubscriberImportRow)} WHERE job_id = %s", [job_id])


def _clear_staging(job_id: int) -> None:
    """Delete a finished import's staged rows: they served their purpose."""
    with transaction.atomic():
        job = SubscriberImport.objects.select_for_update().get(pk=job_id)
        if job.is_finished and not job.staging_cleared:
            _delete_staged(job_id)
            job.staging_cleared = True
            job.save(update_fields=["staging_cleared"])
