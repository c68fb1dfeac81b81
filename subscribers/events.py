"""What the subscribers app tells integrations, handed to the webhook outbox with the ids that changed.

The actions call these inside their transaction, so an event is stored with the
change it describes and sent after commit (see webhooks.outbox). Nothing here
guesses what changed: each call names the subscribers and the labels.
"""

import uuid
from collections.abc import Iterator

from labels.models import Label
from subscribers.models import Subscriber
from webhooks import outbox
from webhooks.models import Endpoint, Event

# How many subscribers one subscriber.labels_changed request lists at most.
CHUNK_SIZE = 500


def subscriber_data(subscriber: Subscriber, channel_name: str) -> dict:
    return {
        "id": subscriber.pk,
        "channel": channel_name,
        "foreign_id": subscriber.foreign_id,
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "gender": subscriber.gender,
        "locale": subscriber.locale,
        "timezone": subscriber.timezone,
        "country": str(subscriber.country or ""),
        "avatar_url": subscriber.avatar_url,
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
    }


def subscribers_saved(saved: list[tuple[Subscriber, bool, list[str]]], *, endpoints=None) -> None:
    """subscriber.created or subscriber.updated for each (subscriber, created, changed fields) that changed.

    The subscribers come with their channel. The active endpoints are read once (none when nothing was
    created or changed), or not at all when the caller passes them in `endpoints`.
    """
    for event, created in ((Event.SUBSCRIBER_CREATED, True), (Event.SUBSCRIBER_UPDATED, False)):
        wanted = [(subscriber, changed) for subscriber, was_created, changed in saved if was_created is created]
        wanted = [(subscriber, changed) for subscriber, changed in wanted if created or changed]
        if not wanted:
            continue
        if endpoints is None:
            endpoints = outbox.active_endpoints()
        listening = outbox.listening_among(endpoints, event)
        if not listening:
            continue
        payloads = []
        for subscriber, changed in wanted:
            data = {"subscriber": subscriber_data(subscriber, subscriber.channel.name)}
            if not created:
                data["changed"] = changed
            payloads.append(data)
        outbox.record(event, payloads, listening)


def opt_out_changed(subscriber: Subscriber, *, opted_out: bool) -> None:
    """subscriber.opted_out (their "STOP") or subscriber.opted_in, with the subscriber's ids and the time."""
    event = Event.OPTED_OUT if opted_out else Event.OPTED_IN
    endpoints = outbox.listening(event)
    if not endpoints:
        return
    channel_name = subscriber.channel.name
    data = {
        "subscriber": {"id": subscriber.pk, "channel": channel_name, "foreign_id": subscriber.foreign_id},
        "opted_out": opted_out,
        "opted_out_at": subscriber.opted_out_at,
    }
    outbox.record(event, [data], endpoints)


def labels_changed(
    subscriber_ids: list[int], *, added: list[int] = (), removed: list[int] = (), operation=None, batch=None
) -> None:
    """subscriber.labels_changed for these subscribers, CHUNK_SIZE per request.

    A bulk operation sends one event per chunk it commits, all sharing the
    operation's id as `batch`, so a receiver can tell them together.
    """
    endpoints = outbox.listening(Event.LABELS_CHANGED)
    if not endpoints or not subscriber_ids:
        return
    outbox.record(
        Event.LABELS_CHANGED,
        _labels_changed_payloads(subscriber_ids, added, removed, operation, batch or str(uuid.uuid4())),
        endpoints,
    )


def _labels_changed_payloads(subscriber_ids, added, removed, operation, batch) -> Iterator[dict]:
    labels = {
        label.pk: {"name": label.name, "title": label.title}
        for label in Label.objects.filter(pk__in=[*added, *removed])
    }
    rows = [
        {"id": pk, "channel": channel, "foreign_id": foreign_id}
        for pk, channel, foreign_id in Subscriber.objects.filter(pk__in=sorted(set(subscriber_ids)))
        .order_by("pk")
        .values_list("pk", "channel__name", "foreign_id")
    ]
    for start in range(0, len(rows), CHUNK_SIZE):
        yield {
            "batch": batch,
            "operation": operation.pk if operation is not None else None,
            "added": [labels[pk] for pk in added if pk in labels],
            "removed": [labels[pk] for pk in removed if pk in labels],
            "subscribers": rows[start : start + CHUNK_SIZE],
        }


# How many subscribers one subscribers.imported request lists at most (an import's chunk is 5,000 rows).
IMPORTED_CHUNK_SIZE = 1_000
# The events an import's chunk stands for: an endpoint listening to any of them hears of imports.
IMPORT_LISTENERS = (Event.SUBSCRIBERS_IMPORTED, Event.SUBSCRIBER_CREATED, Event.SUBSCRIBER_UPDATED)


def import_listeners() -> list:
    """The active endpoints that hear of an import's chunks: one query. Empty: the import builds no payload."""
    return [
        endpoint
        for endpoint in Endpoint.objects.filter(is_active=True)
        if any(event in endpoint.events for event in IMPORT_LISTENERS)
    ]


def subscribers_imported(
    job_id: int,
    *,
    rows: tuple[int, int],
    created: list[tuple[int, str, str]],
    updated: list[tuple[int, str, str]],
    fields: list[str],
    endpoints: list,
) -> None:
    """subscribers.imported: the subscribers one chunk of an import created and changed, by id, channel, foreign id.

    An import sends this instead of one subscriber.created or subscriber.updated per
    subscriber (a million rows made a million deliveries per endpoint): at most
    IMPORTED_CHUNK_SIZE subscribers per request, every request of the import
    sharing `batch` ("import-<id>"). `fields` are the profile fields the file
    writes; each subscriber in `updated` had one of them (or more) changed.
    Sent to the endpoints listening to subscribers.imported, subscriber.created
    or subscriber.updated (`import_listeners`).
    """
    if not endpoints or not (created or updated):
        return

    def listed(subscribers):
        return [{"id": pk, "channel": channel, "foreign_id": foreign_id} for pk, channel, foreign_id in subscribers]

    payloads = []
    for start in range(0, max(len(created), len(updated)), IMPORTED_CHUNK_SIZE):
        payloads.append(
            {
                "import": job_id,
                "batch": f"import-{job_id}",
                "rows": {"first": rows[0], "last": rows[1]},
                "fields": fields,
                "created": listed(created[start : start + IMPORTED_CHUNK_SIZE]),
                "updated": listed(updated[start : start + IMPORTED_CHUNK_SIZE]),
            }
        )
    outbox.record(Event.SUBSCRIBERS_IMPORTED, payloads, endpoints)
