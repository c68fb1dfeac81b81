"""Turning changes into webhook deliveries.

Everything here runs after the caller's transaction commits (`transaction.on_commit`, robust):
the operator's action or the API call is done and answered whatever the endpoints do, and a
rolled-back change announces nothing. With no endpoint listening, the cost is one query.
"""

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from functools import partial

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from labels.models import Label
from subscribers.models import Subscriber
from subscribers.signals import labels_changed
from webhooks.models import Delivery, Endpoint, Event
from webhooks.tasks import deliver

logger = logging.getLogger(__name__)

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


def announce_subscriber_saved(subscriber: Subscriber, channel_name: str, *, created: bool, changed: list[str]):
    """After commit, send subscriber.created or subscriber.updated (with the changed field names)."""
    event = Event.SUBSCRIBER_CREATED if created else Event.SUBSCRIBER_UPDATED
    data = {"subscriber": subscriber_data(subscriber, channel_name)}
    if not created:
        data["changed"] = changed
    transaction.on_commit(partial(_deliver_to_listeners, event, lambda: iter([data])), robust=True)


@receiver(labels_changed)
def _announce_labels_changed(sender, changed_at, added, removed, by=None, **kwargs):
    transaction.on_commit(
        partial(
            _deliver_to_listeners, Event.LABELS_CHANGED, partial(_labels_changed_chunks, changed_at, added, removed)
        ),
        robust=True,
    )


def _labels_changed_chunks(changed_at, added, removed) -> Iterator[dict]:
    """One payload per CHUNK_SIZE subscribers whose labels changed at `changed_at`."""
    labels = {
        label.pk: {"name": label.name, "title": label.title}
        for label in Label.objects.filter(pk__in=[*added, *removed])
    }
    changed = Subscriber.objects.filter(updated_at=changed_at).order_by("pk")
    rows = [
        {"id": pk, "channel": channel, "foreign_id": foreign_id}
        for pk, channel, foreign_id in changed.values_list("pk", "channel__name", "foreign_id")
    ]
    batch = str(uuid.uuid4())
    chunks = [rows[start : start + CHUNK_SIZE] for start in range(0, len(rows), CHUNK_SIZE)]
    for number, chunk in enumerate(chunks, start=1):
        yield {
            "batch": batch,
            "chunk": number,
            "chunks": len(chunks),
            "added": [labels[pk] for pk in added if pk in labels],
            "removed": [labels[pk] for pk in removed if pk in labels],
            "subscribers": chunk,
        }


def _deliver_to_listeners(event: str, payloads: Callable[[], Iterator[dict]]):
    endpoints = Endpoint.objects.listening_to(event)
    if not endpoints:
        return
    now = timezone.now()
    deliveries = [
        Delivery(endpoint=endpoint, event=event, body=_body(event, data, now), created_at=now)
        for data in payloads()
        for endpoint in endpoints
    ]
    Delivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        try:
            deliver.enqueue(delivery.pk)
        except Exception:
            # The delivery stays pending in the log, where staff can see it was never sent.
            logger.exception("Could not enqueue webhook delivery %s", delivery.pk)


def _body(event: str, data: dict, now) -> str:
    return json.dumps({"event": event, "created_at": now, "data": data}, cls=DjangoJSONEncoder, ensure_ascii=False)
