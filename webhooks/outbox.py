"""The webhook outbox: events handed over by the apps that changed something, stored and sent later.

`record()` runs inside the caller's transaction: the deliveries commit with the
change they announce, or not at all, so a worker killed after the commit still
leaves them in the log, where the sweep sends them. They are queued for sending
once the transaction commits. The outbox knows nothing of subscribers: the
apps above build the payloads and name the event.
"""

import json
import logging
from collections.abc import Iterable
from functools import partial

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from webhooks.models import Delivery, Endpoint
from webhooks.tasks import deliver

logger = logging.getLogger(__name__)


def listening(event: str) -> list[Endpoint]:
    """The active endpoints that receive `event`: one query. Callers skip building payloads when it is empty."""
    return Endpoint.objects.listening_to(event)


def record(event: str, payloads: Iterable[dict], endpoints: list[Endpoint] | None = None) -> int:
    """Store one delivery per payload and endpoint listening to `event`; send them after commit.

    Returns how many deliveries were stored (none when no endpoint listens).
    """
    endpoints = listening(event) if endpoints is None else endpoints
    if not endpoints:
        return 0
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        Delivery(endpoint=endpoint, event=event, body=_body(event, data, now), created_at=now)
        for data in payloads
        for endpoint in endpoints
    )
    transaction.on_commit(partial(_enqueue, [delivery.pk for delivery in deliveries]), robust=True)
    return len(deliveries)


def _enqueue(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        try:
            deliver.enqueue(delivery_id)
        except Exception:
            # The delivery stays pending in the log; the worker's sweep queues it again.
            logger.exception("Could not enqueue webhook delivery %s", delivery_id)


def _body(event: str, data: dict, now) -> str:
    return json.dumps({"event": event, "created_at": now, "data": data}, cls=DjangoJSONEncoder, ensure_ascii=False)
