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
from webhooks.models import Event

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


def subscriber_saved(subscriber: Subscriber, channel_name: str, *, created: bool, changed: list[str]) -> None:
    """subscriber.created, or subscriber.updated with the names of the profile fields that changed."""
    event = Event.SUBSCRIBER_CREATED if created else Event.SUBSCRIBER_UPDATED
    data = {"subscriber": subscriber_data(subscriber, channel_name)}
    if not created:
        data["changed"] = changed
    outbox.record(event, [data])


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


def wants_profile_changes() -> bool:
    """Whether any endpoint listens to subscriber.updated: an import then finds out which fields it changes."""
    return bool(outbox.listening(Event.SUBSCRIBER_UPDATED))


def subscribers_imported(created_ids: list[int], changed: dict[int, list[str]]) -> None:
    """subscriber.created for each subscriber an import created, subscriber.updated for each it changed.

    The same events, one per subscriber, as the API's single changes send; built
    only when an endpoint listens. `changed` maps each id to its changed fields.
    """
    for event, ids in ((Event.SUBSCRIBER_CREATED, created_ids), (Event.SUBSCRIBER_UPDATED, sorted(changed))):
        endpoints = outbox.listening(event) if ids else []
        if not endpoints:
            continue
        subscribers = Subscriber.objects.filter(pk__in=ids).select_related("channel").order_by("pk")
        payloads = []
        for subscriber in subscribers:
            data = {"subscriber": subscriber_data(subscriber, subscriber.channel.name)}
            if event == Event.SUBSCRIBER_UPDATED:
                data["changed"] = changed[subscriber.pk]
            payloads.append(data)
        outbox.record(event, payloads, endpoints)
