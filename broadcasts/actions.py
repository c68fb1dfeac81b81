"""Every change to a broadcast and its deliveries goes through these functions.

The life of a broadcast: a draft is saved (`save_broadcast`), sent now or
scheduled (`start_broadcast`); a worker then freezes its audience in chunks
of subscriber ids (`_freeze_chunk`: one delivery row per recipient, written by
one INSERT .. SELECT per chunk, skipped ones with their reason), and any
number of workers send it (`send_batches`), a small group at a time: each
worker marks the next group of queued deliveries "sending" in one committed
UPDATE (the rows picked by SELECT .. FOR UPDATE SKIP LOCKED) *before* sending
them concurrently at the channel's shared rate, then confirms every outcome in
one statement. A worker that dies leaves only the group it had in flight
"sending" (the sweep turns those into "unknown", never sent again); the rest
of the broadcast was never held and stays queued for the other workers, or for
the one the sweep starts when the broadcast's heartbeat stops.
"""

import json
import logging
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min
from django.db.models.functions import Coalesce
from django.tasks import task
from django.utils import timezone
from django.utils.translation import gettext as _

from broadcasts import queries
from broadcasts.connectors import RELEASE, Message, Outcome, connector_for, rate_of
from broadcasts.messages import message_for
from broadcasts.models import Broadcast, ChannelThrottle, Delivery, DeliveryReason, DeliveryStatus
from labels.models import Label
from subscribers.actions import request_label_operation
from subscribers.models import ChannelKind, LabelOperation, LabelSource, Subscriber

logger = logging.getLogger(__name__)

# Subscriber ids per freezing chunk: one INSERT .. SELECT each, a fraction of a second on PostgreSQL.
FREEZE_CHUNK = 100_000
# Deliveries a worker marks "sending" at once (one committed UPDATE) and then sends concurrently: all of them
# are in flight together, so a worker that dies leaves at most these "unknown". Nothing else is held.
BATCH_SIZE = 16
# On a rate-limited channel a group spans at most about this long (fewer deliveries per group on slow channels).
GROUP_SPAN_SECONDS = 2.0
# A delivery marked "sending" this long ago has lost its worker (a batch takes seconds): it becomes unknown.
STALE_SENDING = timedelta(minutes=2)
# A sending broadcast whose batches stopped this long ago has lost its workers: the sweep queues it again.
STALE_AFTER = timedelta(seconds=45)
# Temporary errors are tried this many times in all, 30 s, 1 min, 2 min… apart.
MAX_ATTEMPTS = 5
# After this many sent or failed, a share of failures above this pauses the broadcast: something is wrong.
ERROR_RATE_MINIMUM = 100
ERROR_RATE_PAUSE = 0.5
THROTTLE_PAUSE_SECONDS = 2.0


def retry_delay(attempts: int) -> timedelta:
    base = getattr(settings, "BROADCAST_RETRY_BASE_SECONDS", 30)
    return timedelta(seconds=base * 2 ** (attempts - 1))


# --- Drafts ---------------------------------------------------------------------------------------


def save_broadcast(form, *, by) -> Broadcast:
    """Save a draft from its valid form (broadcasts.forms.BroadcastForm). Only drafts change."""
    broadcast = form.instance
    if broadcast.pk and broadcast.status != Broadcast.Status.DRAFT:
        raise ValueError(f"Broadcast {broadcast.pk} is not a draft any more.")
    if not broadcast.pk:
        broadcast.created_by = by
    broadcast.updated_at = timezone.now()
    form.save()
    return broadcast


def delete_draft(broadcast: Broadcast) -> bool:
    """Delete a draft (nothing was sent); False when it is not a draft any more."""
    return bool(Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.DRAFT).delete()[0])


def delete_broadcast(broadcast: Broadcast) -> None:
    """Delete a finished broadcast and its delivery rows (the admin's delete)."""
    with transaction.atomic():
        Delivery.objects.filter(broadcast=broadcast).delete()
        broadcast.delete()


# --- Sending, scheduling, pause, resume, cancel ---------------------------------------------------


def start_broadcast(broadcast: Broadcast, *, by, at=None, timezone_name: str = "") -> bool:
    """Send a draft now, or at `at` (an aware datetime). False when it is no longer a draft."""
    now = timezone.now()
    later = at is not None and at > now
    changed = Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.DRAFT).update(
        status=Broadcast.Status.SCHEDULED if later else Broadcast.Status.SENDING,
        scheduled_at=at if later else None,
        schedule_timezone=timezone_name if later else "",
        started_at=None if later else now,
        heartbeat_at=at if later else now,
        stopped_by=None,
        updated_at=now,
    )
    if changed:
        run_after = at if later else None
        transaction.on_commit(lambda: _enqueue(broadcast.pk, run_after=run_after))
    broadcast.refresh_from_db()
    return bool(changed)


def pause_broadcast(broadcast: Broadcast, *, by=None, reason: str = "") -> bool:
    """Stop sending after the batches under way; what is left stays queued for Resume. False if not sending."""
    changed = Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.SENDING).update(
        status=Broadcast.Status.PAUSED, pause_reason=reason, stopped_by=by, updated_at=timezone.now()
    )
    broadcast.refresh_from_db()
    return bool(changed)


def resume_broadcast(broadcast: Broadcast, *, by=None) -> bool:
    """Go on sending a paused broadcast from where it stopped. False if it is not paused."""
    now = timezone.now()
    changed = Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.PAUSED).update(
        status=Broadcast.Status.SENDING,
        pause_reason="",
        stopped_by=None,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), now),
        updated_at=now,
    )
    if changed:
        transaction.on_commit(lambda: _enqueue(broadcast.pk))
    broadcast.refresh_from_db()
    return bool(changed)


def cancel_broadcast(broadcast: Broadcast, *, by=None) -> bool:
    """Stop a scheduled, sending or paused broadcast for good; its unsent deliveries stay as "not sent"."""
    now = timezone.now()
    changed = Broadcast.objects.filter(
        pk=broadcast.pk,
        status__in=[Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING, Broadcast.Status.PAUSED],
    ).update(status=Broadcast.Status.CANCELLED, stopped_by=by, finished_at=now, updated_at=now)
    broadcast.refresh_from_db()
    return bool(changed)


def _enqueue(broadcast_id: int, *, run_after=None) -> None:
    try:
        if run_after is not None:
            run_broadcast.using(run_after=run_after).enqueue(broadcast_id)
        else:
            run_broadcast.enqueue(broadcast_id)
    except Exception:
        # The sweep queues it again (its heartbeat stops moving).
        logger.exception("Could not queue broadcast %s", broadcast_id)


@task()
def run_broadcast(broadcast_id: int) -> None:
    """Background: start a due scheduled broadcast, freeze its audience, then send with the other workers."""
    run_broadcast_now(broadcast_id, fan_out=True)


@task()
def send_broadcast(broadcast_id: int) -> None:
    """Background: one more worker's share of a frozen broadcast's sending."""
    send_batches(broadcast_id)


def run_broadcast_now(broadcast_id: int, *, fan_out: bool = False, sleep=time.sleep) -> Broadcast:
    """Do a broadcast's pending work in this process: start it if due, freeze, send; return it.

    With `fan_out`, other workers are asked to share the sending (BROADCAST_WORKERS in all).
    """
    now = timezone.now()
    Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SCHEDULED, scheduled_at__lte=now).update(
        status=Broadcast.Status.SENDING, started_at=now, heartbeat_at=now, updated_at=now
    )
    while _freeze_chunk(broadcast_id):
        pass
    if fan_out and Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SENDING).exists():
        for _ in range(settings.BROADCAST_WORKERS - 1):
            try:
                send_broadcast.enqueue(broadcast_id)
            except Exception:
                logger.exception("Could not queue a sender for broadcast %s", broadcast_id)
    send_batches(broadcast_id, sleep=sleep)
    return Broadcast.objects.get(pk=broadcast_id)


# --- Freezing the audience ------------------------------------------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _freeze_chunk(broadcast_id: int) -> bool:
    """Freeze the next chunk of the audience in one transaction; return whether there is more to do.

    The first pass finds the audience's highest id: subscribers created after
    sending started are not in it. A chunk's rows commit with `frozen_up_to`, so
    a chunk is never written twice, even after a crash.
    """
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
        if broadcast.status != Broadcast.Status.SENDING or broadcast.is_frozen:
            return False
        now = timezone.now()
        if broadcast.freeze_max is None and broadcast.segment_id:
            # A segment is read when sending starts: the broadcast records the filter it goes out with.
            broadcast.audience = {"filters": broadcast.segment.filters()}
        try:
            subscribers = queries.audience(broadcast.audience, broadcast.last_interaction_hours, now=now)
        except ValueError as error:
            _fail(broadcast, _("The audience's filter no longer applies: %(error)s") % {"error": error}, now)
            return False
        if broadcast.freeze_max is None:
            bounds = subscribers.aggregate(first=Min("pk"), last=Max("pk"))
            broadcast.freeze_max = bounds["last"] or 0
            broadcast.frozen_up_to = (bounds["first"] or 1) - 1
        low, high = broadcast.frozen_up_to, min(broadcast.frozen_up_to + FREEZE_CHUNK, broadcast.freeze_max)
        if low < high:
            chunk = (
                queries.with_outcome(
                    subscribers.filter(pk__gt=low, pk__lte=high),
                    broadcast.is_promotional,
                    now,
                    exclude_broadcast=broadcast.pk,
                    within=(low, high),
                )
                .annotate(recipient=F("pk"))
                .values_list("recipient", "outcome")
            )
            sql, params = chunk.query.sql_with_params()
            # A plain INSERT: this transaction holds the broadcast's row and moves `frozen_up_to` with the rows,
            # so none of them can exist yet (ON CONFLICT would cost a speculative insertion per row).
            insert = f"""
                INSERT INTO {_table(Delivery)} (broadcast_id, subscriber_id, status, reason, detail, attempts,
                                                message_id)
                SELECT %s, a.recipient, CASE WHEN a.outcome = '' THEN 'queued' ELSE 'skipped' END, a.outcome,
                       '', 0, ''
                FROM ({sql}) AS a
                RETURNING status
            """
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":  # counted in the database, not sent back row by row
                    cursor.execute(
                        f"WITH added AS ({insert}) SELECT status, COUNT(*) FROM added GROUP BY status",
                        [broadcast.pk, *params],
                    )
                    added = dict(cursor.fetchall())
                else:
                    cursor.execute(insert, [broadcast.pk, *params])
                    statuses = [status for (status,) in cursor.fetchall()]
                    added = {status: statuses.count(status) for status in set(statuses)}
            broadcast.total_count += sum(added.values())
            broadcast.skipped_count += added.get(DeliveryStatus.SKIPPED, 0)
            broadcast.frozen_up_to = high
        more = high < broadcast.freeze_max
        if not more:
            broadcast.frozen_at = now
        broadcast.heartbeat_at = now
        broadcast.save()
        if connection.vendor == "postgresql" and not more and broadcast.total_count > 10_000:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {_table(Delivery)}")
        return more


def _fail(broadcast: Broadcast, reason: str, now) -> None:
    broadcast.status, broadcast.pause_reason, broadcast.finished_at = Broadcast.Status.FAILED, reason, now
    broadcast.save(update_fields=["status", "pause_reason", "finished_at"])


# --- Sending --------------------------------------------------------------------------------------


def send_batches(broadcast_id: int, *, sleep=time.sleep, max_batches: int | None = None, after_mark=None) -> int:
    """Mark, send and confirm groups of a frozen, sending broadcast until none is left; return how many sent.

    Safe with any number of workers at once. Stops when the broadcast is paused,
    cancelled or done. `after_mark(subscribers)` (tests) runs between the mark and the sends.
    """
    connectors: dict[int, object] = {}
    sent = batches = 0
    after = 0  # this worker's last subscriber id: its next claim starts there, past the rows already done
    size = _batch_size()
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    try:
        while max_batches is None or batches < max_batches:
            if broadcast is None or broadcast.status != Broadcast.Status.SENDING or not broadcast.is_frozen:
                break
            claimed = _claim(broadcast, size=size, after=after)
            if not claimed and after:
                after = 0
                claimed = _claim(broadcast, size=size)
            if not claimed:
                if not _finish_if_done(broadcast_id):
                    _queue_retries(broadcast_id)
                break
            after = claimed[-1].pk
            batches += 1
            if after_mark is not None:
                after_mark(claimed)
            results, slowest = _send(broadcast, claimed, connectors, sleep)
            if slowest:  # a slow channel: smaller groups, so none stays marked long
                size = max(1, min(_batch_size(), int(slowest * GROUP_SPAN_SECONDS)))
            done, broadcast.status = _confirm(broadcast, results)
            sent += done
    finally:
        for connector in connectors.values():
            connector.close()
    return sent


def _claim(broadcast: Broadcast, *, size: int | None = None, after: int = 0) -> list[Subscriber]:
    """Mark the next group of due queued deliveries "sending", committed before any is sent; return their people.

    One UPDATE over the rows a SELECT .. FOR UPDATE SKIP LOCKED picks (so two
    workers never take the same row), in subscriber order from `after`. The pick
    is MATERIALIZED: run once, so the LIMIT holds. Only
    this group is held: the rest of the broadcast stays queued for any worker.
    """
    now = timezone.now()
    table = _table(Delivery)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH due AS MATERIALIZED (
                SELECT subscriber_id AS s FROM {table}
                WHERE broadcast_id = %s AND status = 'queued' AND subscriber_id > %s
                      AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                ORDER BY subscriber_id LIMIT %s{lock}
            )
            UPDATE {table} SET status = 'sending', claimed_at = %s
            FROM due
            WHERE {table}.broadcast_id = %s AND {table}.subscriber_id = due.s AND {table}.status = 'queued'
            RETURNING {table}.subscriber_id
            """,
            [broadcast.pk, after, _db_time(now), size or _batch_size(), _db_time(now), broadcast.pk],
        )
        ids = sorted(subscriber_id for (subscriber_id,) in cursor.fetchall())
    if not ids:
        return []
    found = list(Subscriber.objects.filter(pk__in=ids).select_related("channel").order_by("pk"))
    missing = set(ids) - {subscriber.pk for subscriber in found}
    if missing:  # deleted since the freeze: nothing to send them
        _confirm(
            broadcast,
            [(pk, Outcome("failed", DeliveryReason.UNREACHABLE, _("The subscriber was deleted."))) for pk in missing],
        )
    return found


def _batch_size() -> int:
    return getattr(settings, "BROADCAST_BATCH_SIZE", BATCH_SIZE)


def _skip_reason(broadcast: Broadcast, subscriber: Subscriber, now) -> str:
    """Checked again just before sending: a STOP heard, the window closed or the channel switched off meanwhile."""
    if not subscriber.channel.is_active:
        return DeliveryReason.CHANNEL_INACTIVE
    if subscriber.opted_out_at is not None:
        return DeliveryReason.OPTED_OUT
    in_window = subscriber.last_seen_at is not None and subscriber.last_seen_at >= queries.window_start(now)
    if broadcast.is_promotional and subscriber.channel.kind == ChannelKind.MESSENGER and not in_window:
        return DeliveryReason.OUTSIDE_WINDOW
    return ""


def _send(broadcast: Broadcast, subscribers: list[Subscriber], connectors: dict, sleep):
    """Send a marked group at each channel's shared rate, concurrently; return its outcomes and the slowest rate.

    After a page-level error or a "slow down", what was not yet sent goes back to the queue.
    """
    results: list[tuple[int, Outcome]] = []
    now = timezone.now()
    by_channel: dict[int, list[Subscriber]] = {}
    for subscriber in subscribers:
        reason = _skip_reason(broadcast, subscriber, now)
        if reason:
            results.append((subscriber.pk, Outcome("skip", reason)))
        else:
            by_channel.setdefault(subscriber.channel_id, []).append(subscriber)
    slowest = 0.0
    stopped = False
    for channel_people in by_channel.values():
        channel = channel_people[0].channel
        if stopped:
            results.extend((subscriber.pk, RELEASE) for subscriber in channel_people)
            continue
        connector = connectors.get(channel.pk) or connectors.setdefault(channel.pk, connector_for(channel))
        rate = rate_of(channel)
        slowest = min(slowest, rate) if slowest and rate else slowest or rate
        items = []
        for subscriber in channel_people:
            try:
                text = message_for(broadcast, subscriber)
            except ValueError as error:
                results.append((subscriber.pk, Outcome("failed", DeliveryReason.REJECTED, str(error)[:500])))
                continue
            items.append([subscriber, Message(text, broadcast.quick_replies, broadcast.message_tag, broadcast.pk)])
        if not items:
            continue
        first = _reserve_slots(channel, len(items), rate) if rate else None
        timed = [
            (subscriber, message, first + timedelta(seconds=index / rate) if first is not None else None)
            for index, (subscriber, message) in enumerate(items)
        ]
        outcomes = connector.send_many(timed, partial(_wait_until, sleep=sleep))
        for (subscriber, _message, _due), outcome in zip(timed, outcomes, strict=True):
            results.append((subscriber.pk, outcome))
        throttled = [outcome for outcome in outcomes if outcome.kind == "throttled"]
        if throttled:
            _slow_down(channel, max(outcome.retry_after or 0 for outcome in throttled) or None)
        stop = next((outcome for outcome in outcomes if outcome.kind == "stop"), None)
        if stop is not None:
            stopped = True
            _pause_for(broadcast, stop.detail)
    return results, slowest


def _wait_until(due, *, sleep) -> None:
    wait = (due - timezone.now()).total_seconds()
    if wait > 0:
        sleep(wait)


def _reserve_slots(channel, count: int, rate: float):
    """Reserve `count` send slots of the channel, 1/rate s apart, for every worker alike; return the first."""
    now = timezone.now()
    with transaction.atomic():
        throttle, _created = ChannelThrottle.objects.select_for_update().get_or_create(
            channel=channel, defaults={"next_slot_at": now}
        )
        first = max(throttle.next_slot_at, now)
        throttle.next_slot_at = first + timedelta(seconds=count / rate)
        throttle.save(update_fields=["next_slot_at"])
    return first


def _slow_down(channel, retry_after: float | None) -> None:
    """The channel said "too many": every worker waits before its next slot of this channel."""
    until = timezone.now() + timedelta(seconds=retry_after or THROTTLE_PAUSE_SECONDS)
    ChannelThrottle.objects.get_or_create(channel=channel, defaults={"next_slot_at": until})
    ChannelThrottle.objects.filter(channel=channel, next_slot_at__lt=until).update(next_slot_at=until)


def _pause_for(broadcast: Broadcast, reason: str) -> None:
    if pause_broadcast(broadcast, reason=reason):
        logger.warning("Broadcast %s paused: %s", broadcast.pk, reason)


def _confirm(broadcast: Broadcast, results: list[tuple[int, Outcome]]) -> tuple[int, str]:
    """Record a group's outcomes and move the broadcast's counts in one transaction; return (sent, its status).

    A confirmation lost in a crash of the database itself leaves its deliveries
    "sending", hence "unknown", never resent: it need not wait for the disk
    (PostgreSQL's synchronous_commit off for this transaction). The mark does.
    """
    now = timezone.now()
    rows = []
    for subscriber_id, outcome in results:
        status, reason, next_attempt, attempted = _status_of(outcome, now)
        rows.append((subscriber_id, status, reason, outcome.detail[:500], outcome.message_id, next_attempt, attempted))
    table = _table(Broadcast)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        changed = _update_deliveries(broadcast.pk, rows, now) if rows else []
        counts = {status: sum(1 for s in changed if s == status) for status in set(changed)}
        cursor.execute(
            f"""
            UPDATE {table} SET sent_count = sent_count + %s, failed_count = failed_count + %s,
                   skipped_count = skipped_count + %s, unknown_count = unknown_count + %s, heartbeat_at = %s
            WHERE id = %s RETURNING status, sent_count, failed_count
            """,
            [
                counts.get(DeliveryStatus.SENT, 0),
                counts.get(DeliveryStatus.FAILED, 0),
                counts.get(DeliveryStatus.SKIPPED, 0),
                counts.get(DeliveryStatus.UNKNOWN, 0),
                _db_time(now),
                broadcast.pk,
            ],
        )
        row = cursor.fetchone()
    status, sent_count, failed_count = row if row else (Broadcast.Status.CANCELLED, 0, 0)
    if counts.get(DeliveryStatus.FAILED) and _too_many_errors(broadcast.pk, sent_count, failed_count):
        status = Broadcast.Status.PAUSED
    return counts.get(DeliveryStatus.SENT, 0), status


def _status_of(outcome: Outcome, now):
    """(status, reason, next attempt, whether it counts as an attempt) for a connector's outcome."""
    kind = outcome.kind
    if kind == "sent":
        return DeliveryStatus.SENT, "", None, True
    if kind == "skip":
        return DeliveryStatus.SKIPPED, outcome.reason, None, False
    if kind == "failed":
        return DeliveryStatus.FAILED, outcome.reason or DeliveryReason.REJECTED, None, True
    if kind == "unknown":
        return DeliveryStatus.UNKNOWN, outcome.reason or DeliveryReason.NO_ANSWER, None, True
    if kind == "retry":
        return DeliveryStatus.QUEUED, "retry", None, True  # the delay depends on the attempts: set in SQL below
    if kind == "throttled":
        return DeliveryStatus.QUEUED, "", now + timedelta(seconds=outcome.retry_after or THROTTLE_PAUSE_SECONDS), False
    return DeliveryStatus.QUEUED, "", None, False  # release, stop: nothing was sent


def _update_deliveries(broadcast_id: int, rows: list[tuple], now) -> list[str]:
    """Apply the batch's outcomes to the deliveries still marked "sending"; return their new statuses.

    One UPDATE for the whole group, through the primary key: its status test is
    written so that it does not match the partial index delivery_by_status, whose
    "sending" range every delivery passes through and whose dead entries, until the next
    VACUUM, make it much slower than the key while the planner thinks it tiny.
    A temporary error (rare) goes back to the
    queue with a delay growing with its attempts, or fails for good after
    MAX_ATTEMPTS: those are read and written one by one.
    """
    retries = [row for row in rows if row[2] == "retry"]
    if retries:
        attempts = dict(
            Delivery.objects.filter(
                broadcast_id=broadcast_id,
                subscriber_id__in=[row[0] for row in retries],
                status=DeliveryStatus.SENDING,
            ).values_list("subscriber_id", "attempts")
        )
        settled = []
        for subscriber_id, _status, _reason, detail, message_id, _next, _attempted in retries:
            if subscriber_id not in attempts:
                continue  # the sweep already declared it unknown
            if attempts[subscriber_id] + 1 >= MAX_ATTEMPTS:
                settled.append(
                    (subscriber_id, DeliveryStatus.FAILED, DeliveryReason.RETRIES_EXHAUSTED, detail, "", None, True)
                )
            else:
                due = now + retry_delay(attempts[subscriber_id] + 1)
                settled.append((subscriber_id, DeliveryStatus.QUEUED, "", detail, message_id, due, True))
        rows = [row for row in rows if row[2] != "retry"] + settled
    if not rows:
        return []
    source, params = _outcomes_source(rows)
    table = _table(Delivery)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET status = v.status, reason = v.reason, detail = v.detail, message_id = v.message_id,
                   next_attempt_at = v.next_attempt, attempts = {table}.attempts + v.attempted,
                   sent_at = CASE WHEN v.status = 'sent' THEN %s ELSE NULL END,
                   claimed_at = CASE WHEN v.status = 'queued' THEN NULL ELSE {table}.claimed_at END
            FROM {source} AS v
            WHERE {table}.broadcast_id = %s AND {table}.subscriber_id = v.s
                  AND COALESCE({table}.status, '') = 'sending'
            RETURNING {table}.status
            """,
            [_db_time(now), *params, broadcast_id],
        )
        return [status for (status,) in cursor.fetchall()]


def _outcomes_source(rows: list[tuple]) -> tuple[str, list]:
    """The batch's outcomes as a derived table v(s, status, reason, detail, message_id, next_attempt, attempted)."""
    data = [
        [subscriber_id, status, reason, detail, message_id, _db_time(next_attempt), 1 if attempted else 0]
        for subscriber_id, status, reason, detail, message_id, next_attempt, attempted in rows
    ]
    if connection.vendor == "postgresql":
        keys = ["s", "status", "reason", "detail", "message_id", "next_attempt", "attempted"]
        records = [
            dict(zip(keys, [*row[:5], row[5].isoformat() if row[5] else None, row[6]], strict=True)) for row in data
        ]
        return (
            "(SELECT * FROM json_to_recordset(%s::json) AS r(s bigint, status text, reason text, detail text, "
            "message_id text, next_attempt timestamptz, attempted int))",
            [json.dumps(records)],
        )
    return (
        "(SELECT json_extract(value, '$[0]') AS s, json_extract(value, '$[1]') AS status, "
        "json_extract(value, '$[2]') AS reason, json_extract(value, '$[3]') AS detail, "
        "json_extract(value, '$[4]') AS message_id, json_extract(value, '$[5]') AS next_attempt, "
        "json_extract(value, '$[6]') AS attempted FROM json_each(%s))",
        [json.dumps(data, default=str)],
    )


def _db_time(moment):
    return connection.ops.adapt_datetimefield_value(moment) if moment is not None else None


def _too_many_errors(broadcast_id: int, sent_count: int, failed_count: int) -> bool:
    """Pause the broadcast when most of what was tried failed: something is wrong. True when it paused."""
    tried = sent_count + failed_count
    if tried < ERROR_RATE_MINIMUM or failed_count <= tried * ERROR_RATE_PAUSE:
        return False
    reason = _("%(failed)s of the %(tried)s messages tried so far failed: sending paused to let you look.") % {
        "failed": failed_count,
        "tried": tried,
    }
    broadcast = Broadcast(pk=broadcast_id)
    _pause_for(broadcast, reason)
    return True


def _finish_if_done(broadcast_id: int) -> bool:
    """Mark a sending broadcast done once nothing is queued or being sent; one worker does it."""
    # One look per status, each over its own partial index (delivery_queued, delivery_by_status): a status IN
    # (..) over both would read the whole table when neither has a row.
    deliveries = Delivery.objects.filter(broadcast_id=broadcast_id)
    if any(deliveries.filter(status=status).exists() for status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)):
        return False
    return bool(
        Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SENDING, frozen_at__isnull=False).update(
            status=Broadcast.Status.DONE, finished_at=timezone.now()
        )
    )


def _queue_retries(broadcast_id: int) -> None:
    """Nothing due now: have a worker come back when the next retry is due."""
    due = Delivery.objects.filter(
        broadcast_id=broadcast_id, status=DeliveryStatus.QUEUED, next_attempt_at__isnull=False
    ).aggregate(first=Min("next_attempt_at"))["first"]
    if due is not None and Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SENDING).exists():
        transaction.on_commit(lambda: _enqueue_sender(broadcast_id, due))


def _enqueue_sender(broadcast_id: int, run_after) -> None:
    try:
        send_broadcast.using(run_after=run_after).enqueue(broadcast_id)
    except Exception:
        logger.exception("Could not queue broadcast %s for its retries; the sweep will", broadcast_id)


# --- The sweep ------------------------------------------------------------------------------------


def sweep_broadcasts(now=None) -> dict:
    """Run by every `manage.py db_worker` every few seconds: what dead workers left behind.

    Deliveries marked "sending" STALE_SENDING ago become "unknown" (never sent
    again); a sending or scheduled broadcast whose heartbeat stopped STALE_AFTER
    ago (or whose time has come) is queued again, by one sweeper only.
    """
    now = now or timezone.now()
    # Looked for broadcast by broadcast, over each one's "sending" range of delivery_by_status: only a broadcast
    # that went out and is not done can have any (done means none is queued or being sent).
    went_out = [Broadcast.Status.SENDING, Broadcast.Status.PAUSED, Broadcast.Status.CANCELLED, Broadcast.Status.FAILED]
    by_broadcast: dict[int, list[int]] = {}
    lost = 0
    for broadcast_id in Broadcast.objects.filter(status__in=went_out).values_list("pk", flat=True).order_by("pk"):
        subscriber_ids = list(
            Delivery.objects.filter(
                broadcast_id=broadcast_id, status=DeliveryStatus.SENDING, claimed_at__lt=now - STALE_SENDING
            )
            .values_list("subscriber_id", flat=True)
            .order_by()[: 10_000 - lost]
        )
        if subscriber_ids:
            by_broadcast[broadcast_id] = subscriber_ids
            lost += len(subscriber_ids)
        if lost >= 10_000:
            break
    for broadcast_id, subscriber_ids in by_broadcast.items():
        with transaction.atomic():
            changed = Delivery.objects.filter(
                broadcast_id=broadcast_id, subscriber_id__in=subscriber_ids, status=DeliveryStatus.SENDING
            ).update(
                status=DeliveryStatus.UNKNOWN,
                reason=DeliveryReason.WORKER_DIED,
                detail=_("Marked for sending, never confirmed: it may or may not have reached the person."),
            )
            Broadcast.objects.filter(pk=broadcast_id).update(unknown_count=F("unknown_count") + changed)
        _finish_if_done(broadcast_id)
    if lost:
        logger.warning("Deliveries of dead workers marked unknown: %s", {k: len(v) for k, v in by_broadcast.items()})
    stalled = Broadcast.objects.filter(
        status__in=[Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING], heartbeat_at__lt=now - STALE_AFTER
    ).exclude(status=Broadcast.Status.SCHEDULED, scheduled_at__gt=now)
    queued = []
    for broadcast_id in stalled.values_list("pk", flat=True):
        if stalled.filter(pk=broadcast_id).update(heartbeat_at=now):
            _enqueue(broadcast_id)
            queued.append(broadcast_id)
    if queued:
        logger.warning("Broadcasts queued again by the sweep: %s", queued)
    return {"unknown": lost, "queued": queued}


# --- Test sends and labels ------------------------------------------------------------------------


def send_test(broadcast: Broadcast, subscribers: list[Subscriber]) -> list[tuple[Subscriber, Outcome]]:
    """Send the broadcast, personalised, to these subscribers now, marked as a test; nothing is recorded in its report.

    The channel's own rules still apply at the channel (Messenger's window).
    """
    results = []
    connectors = {}
    try:
        for subscriber in subscribers:
            channel = subscriber.channel
            connector = connectors.get(channel.pk) or connectors.setdefault(channel.pk, connector_for(channel))
            try:
                text = message_for(broadcast, subscriber)
            except ValueError as error:
                results.append((subscriber, Outcome("failed", DeliveryReason.REJECTED, str(error))))
                continue
            message = Message(text, broadcast.quick_replies, broadcast.message_tag, broadcast.pk, is_test=True)
            results.append((subscriber, connector.send(subscriber, message)))
    finally:
        for connector in connectors.values():
            connector.close()
    return results


def label_recipients(broadcast: Broadcast, status: str, labels: list[Label], *, by) -> LabelOperation:
    """Give labels to the broadcast's recipients of one status (sent, failed, skipped, unknown), in bulk.

    Through the bulk label engine: chunked, in the background when large, undoable.
    """
    selection = {"filters": {}, "recipients": {"broadcast": broadcast.pk, "status": status}}
    return request_label_operation(LabelOperation.Kind.ADD, labels, by=by, source=LabelSource.BULK, selection=selection)
