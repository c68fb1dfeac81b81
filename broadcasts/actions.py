"""Every change to a broadcast and its deliveries goes through these functions.

The life of a broadcast: a draft is saved (`save_broadcast`), sent now or
scheduled (`start_broadcast`); a worker then freezes its audience in chunks
of subscriber ids (`_freeze_chunk`: one delivery row per recipient, written by
one INSERT .. SELECT per chunk, skipped ones with their reason), and any
number of workers send it (`send_batches`): each claims a batch of queued
deliveries (SELECT .. FOR UPDATE SKIP LOCKED), marks them "sending" and
commits *before* sending, sends at the channel's shared rate, then confirms
every outcome in one statement. A worker that dies between the mark and the
confirmation leaves its batch "sending": the sweep turns those into
"unknown" and never sends them again.
"""

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.db.models.functions import Coalesce
from django.tasks import task
from django.utils import timezone
from django.utils.translation import gettext as _

from broadcasts import queries
from broadcasts.connectors import Message, Outcome, connector_for, rate_of
from broadcasts.messages import message_for
from broadcasts.models import Broadcast, ChannelThrottle, Delivery, DeliveryReason, DeliveryStatus
from labels.models import Label
from subscribers.actions import request_label_operation
from subscribers.models import ChannelKind, LabelOperation, LabelSource, Subscriber

logger = logging.getLogger(__name__)

# Subscriber ids per freezing chunk: one INSERT .. SELECT each, a fraction of a second on PostgreSQL.
FREEZE_CHUNK = 100_000
# Deliveries a worker claims at once. On a slow channel a batch may outlast BATCH_DEADLINE_SECONDS: what it
# has not tried by then goes back to the queue, so a batch never stays marked long enough to look lost.
BATCH_SIZE = 50
# A delivery marked "sending" this long ago has lost its worker (a batch takes seconds): it becomes unknown.
STALE_SENDING = timedelta(minutes=2)
# A sending broadcast whose batches stopped this long ago has lost its workers: the sweep queues it again.
STALE_AFTER = timedelta(seconds=45)
# Temporary errors are tried this many times in all, 30 s, 1 min, 2 min… apart.
MAX_ATTEMPTS = 5
# After this many sent or failed, a share of failures above this pauses the broadcast: something is wrong.
ERROR_RATE_MINIMUM = 100
ERROR_RATE_PAUSE = 0.5
# A batch that takes longer than this (a slow channel) hands its unattempted deliveries back.
BATCH_DEADLINE_SECONDS = 60
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
    sending started are not in it. Rows already frozen (a chunk run twice after a
    crash) are left alone by ON CONFLICT DO NOTHING.
    """
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
        if broadcast.status != Broadcast.Status.SENDING or broadcast.is_frozen:
            return False
        now = timezone.now()
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
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO {_table(Delivery)} (broadcast_id, subscriber_id, status, reason, detail, attempts,
                                                    message_id)
                    SELECT %s, a.recipient, CASE WHEN a.outcome = '' THEN 'queued' ELSE 'skipped' END, a.outcome,
                           '', 0, ''
                    FROM ({sql}) AS a WHERE true
                    ON CONFLICT (broadcast_id, subscriber_id) DO NOTHING
                    RETURNING status
                    """,
                    [broadcast.pk, *params],
                )
                statuses = [status for (status,) in cursor.fetchall()]
            broadcast.total_count += len(statuses)
            broadcast.skipped_count += sum(1 for status in statuses if status == DeliveryStatus.SKIPPED)
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
    """Claim, send and confirm batches of a frozen, sending broadcast until none is left; return how many sent.

    Safe with any number of workers at once. Stops when the broadcast is paused,
    cancelled or done. `after_mark(deliveries)` (tests) runs between the mark and the sends.
    """
    connectors: dict[int, object] = {}
    sent = batches = 0
    try:
        while max_batches is None or batches < max_batches:
            broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
            if broadcast is None or broadcast.status != Broadcast.Status.SENDING or not broadcast.is_frozen:
                break
            claimed = _claim(broadcast)
            if not claimed:
                _finish_if_done(broadcast_id)
                _queue_retries(broadcast_id)
                break
            batches += 1
            if after_mark is not None:
                after_mark(claimed)
            results = _send(broadcast, claimed, connectors, sleep)
            sent += _confirm(broadcast, results)
    finally:
        for connector in connectors.values():
            connector.close()
    return sent


def _claim(broadcast: Broadcast) -> list[Subscriber]:
    """Mark a batch of due queued deliveries "sending" and commit; return their subscribers (channel joined)."""
    now = timezone.now()
    with transaction.atomic():
        due = (
            Delivery.objects.filter(broadcast=broadcast, status=DeliveryStatus.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("subscriber_id")
            .select_for_update(skip_locked=True)
            .values_list("subscriber_id", flat=True)
        )
        ids = list(due[: _batch_size()])
        if not ids:
            return []
        Delivery.objects.filter(broadcast=broadcast, subscriber_id__in=ids).update(
            status=DeliveryStatus.SENDING, claimed_at=now
        )
    subscribers = Subscriber.objects.filter(pk__in=ids).select_related("channel").order_by("pk")
    found = list(subscribers)
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


def _send(broadcast: Broadcast, subscribers: list[Subscriber], connectors: dict, sleep) -> list[tuple[int, Outcome]]:
    """Send the batch at each channel's shared rate; stop early (the rest back to the queue) on a page-level error."""
    results: list[tuple[int, Outcome]] = []
    started = time.monotonic()
    now = timezone.now()
    by_channel: dict[int, list[Subscriber]] = {}
    for subscriber in subscribers:
        reason = _skip_reason(broadcast, subscriber, now)
        if reason:
            results.append((subscriber.pk, Outcome("skip", reason)))
        else:
            by_channel.setdefault(subscriber.channel_id, []).append(subscriber)
    stopped = False
    for channel_people in by_channel.values():
        channel = channel_people[0].channel
        connector = connectors.get(channel.pk) or connectors.setdefault(channel.pk, connector_for(channel))
        rate = rate_of(channel)
        slots = _reserve_slots(channel, len(channel_people), rate) if rate else None
        for index, subscriber in enumerate(channel_people):
            if stopped or time.monotonic() - started > BATCH_DEADLINE_SECONDS:
                results.append((subscriber.pk, Outcome("release")))
                continue
            if slots is not None:
                wait = (slots + timedelta(seconds=index / rate) - timezone.now()).total_seconds()
                if wait > 0:
                    sleep(wait)
            try:
                text = message_for(broadcast, subscriber)
            except ValueError as error:
                results.append((subscriber.pk, Outcome("failed", DeliveryReason.REJECTED, str(error)[:500])))
                continue
            message = Message(text, broadcast.quick_replies, broadcast.message_tag, broadcast.pk)
            outcome = connector.send(subscriber, message)
            results.append((subscriber.pk, outcome))
            if outcome.kind == "throttled":
                _slow_down(channel, outcome.retry_after)
            if outcome.kind == "stop":
                stopped = True
                _pause_for(broadcast, outcome.detail)
    return results


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


def _confirm(broadcast: Broadcast, results: list[tuple[int, Outcome]]) -> int:
    """Record every outcome of a batch and move the broadcast's counts, in one transaction; return how many sent."""
    if not results:
        return 0
    now = timezone.now()
    rows = []
    for subscriber_id, outcome in results:
        status, reason, next_attempt, attempted = _status_of(outcome, now)
        rows.append((subscriber_id, status, reason, outcome.detail[:500], outcome.message_id, next_attempt, attempted))
    with transaction.atomic():
        changed = _update_deliveries(broadcast.pk, rows, now)
        counts = {status: sum(1 for s in changed if s == status) for status in set(changed)}
        Broadcast.objects.filter(pk=broadcast.pk).update(
            sent_count=F("sent_count") + counts.get(DeliveryStatus.SENT, 0),
            failed_count=F("failed_count") + counts.get(DeliveryStatus.FAILED, 0),
            skipped_count=F("skipped_count") + counts.get(DeliveryStatus.SKIPPED, 0),
            unknown_count=F("unknown_count") + counts.get(DeliveryStatus.UNKNOWN, 0),
            heartbeat_at=now,
        )
    _pause_on_errors(broadcast.pk)
    _finish_if_done(broadcast.pk)
    return counts.get(DeliveryStatus.SENT, 0)


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

    One UPDATE for the whole batch. A temporary error (rare) goes back to the
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
            WHERE {table}.broadcast_id = %s AND {table}.subscriber_id = v.s AND {table}.status = 'sending'
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


def _pause_on_errors(broadcast_id: int) -> None:
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    tried = broadcast.sent_count + broadcast.failed_count
    if tried >= ERROR_RATE_MINIMUM and broadcast.failed_count > tried * ERROR_RATE_PAUSE:
        reason = _("%(failed)s of the %(tried)s messages tried so far failed: sending paused to let you look.") % {
            "failed": broadcast.failed_count,
            "tried": tried,
        }
        _pause_for(broadcast, reason)


def _finish_if_done(broadcast_id: int) -> bool:
    """Mark a sending broadcast done once nothing is queued or being sent; one worker does it."""
    waiting = Delivery.objects.filter(
        broadcast_id=broadcast_id, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING]
    ).exists()
    if waiting:
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
    lost = list(
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - STALE_SENDING)
        .values_list("broadcast_id", "subscriber_id")
        .order_by()[:10_000]
    )
    by_broadcast: dict[int, list[int]] = {}
    for broadcast_id, subscriber_id in lost:
        by_broadcast.setdefault(broadcast_id, []).append(subscriber_id)
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
    return {"unknown": len(lost), "queued": queued}


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
