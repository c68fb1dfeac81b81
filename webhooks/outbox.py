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
from django.db import connection, transaction
from django.utils import timezone

from webhooks.models import Delivery, Endpoint
from webhooks.tasks import deliver

logger = logging.getLogger(__name__)


def listening(event: str) -> list[Endpoint]:
    """The active endpoints that receive `event`: one query. Callers skip building payloads when it is empty."""
    return Endpoint.objects.listening_to(event)


def active_endpoints() -> list[Endpoint]:
    """Every active endpoint, for a caller with several events to send: `listening_among` picks per event."""
    return list(Endpoint.objects.filter(is_active=True))


def active_endpoints_sql() -> str:
    """A subquery giving every active endpoint as a JSON array of [id, events]: for a statement that reads
    the listeners in its own round trip. `endpoints_from` turns its value into endpoints."""
    table = connection.ops.quote_name(Endpoint._meta.db_table)
    if connection.vendor == "postgresql":
        return f"SELECT COALESCE(json_agg(json_build_array(e.id, e.events)), '[]') FROM {table} AS e WHERE e.is_active"
    return f"SELECT json_group_array(json_array(e.id, json(e.events))) FROM {table} AS e WHERE e.is_active"


def endpoints_from(value) -> list[Endpoint]:
    """The endpoints (id and events only) an `active_endpoints_sql` subquery returned."""
    rows = json.loads(value) if isinstance(value, str) else value
    return [Endpoint(pk=pk, events=events, is_active=True) for pk, events in rows]


def listening_among(endpoints: list[Endpoint], event: str) -> list[Endpoint]:
    """Those of these active endpoints that receive `event`, as `listening` finds them."""
    return [endpoint for endpoint in endpoints if event in endpoint.events]


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
