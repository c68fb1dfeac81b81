"""PostgreSQL: workers on separate connections share a broadcast and never send the same delivery twice."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.db.models import Count
from django.utils import timezone

from broadcasts import actions
from broadcasts.models import Broadcast, ConsoleMessage, Delivery
from subscribers.models import Channel, Subscriber

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time; run on PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

PEOPLE = 400


def test_four_workers_never_send_the_same_delivery(settings):
    settings.BROADCAST_BATCH_SIZE = 7
    console = Channel.objects.get(name="console")
    console.settings = {"messages_per_second": 0}
    console.save()
    seen = timezone.now() - timedelta(hours=1)
    Subscriber.objects.bulk_create(
        Subscriber(channel=console, foreign_id=f"p{number}", first_name=f"P{number}", last_seen_at=seen)
        for number in range(PEOPLE)
    )
    broadcast = Broadcast.objects.create(title="Race", text="Hi {first_name}", audience={"filters": {}})
    actions.start_broadcast(broadcast, by=None)
    while actions._freeze_chunk(broadcast.pk):
        pass
    sent, errors = [], []

    def worker():
        try:
            sent.append(actions.send_batches(broadcast.pk))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(sent) == PEOPLE
    assert all(share > 0 for share in sent), sent  # every worker got some of the work
    repeated = ConsoleMessage.objects.values("subscriber").annotate(n=Count("*")).filter(n__gt=1)
    assert list(repeated) == []
    assert ConsoleMessage.objects.count() == PEOPLE
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.sent_count, broadcast.total_count) == ("done", PEOPLE, PEOPLE)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_the_claim_skips_rows_another_worker_holds(settings):
    settings.BROADCAST_BATCH_SIZE = 5
    console = Channel.objects.get(name="console")
    Subscriber.objects.bulk_create(
        Subscriber(channel=console, foreign_id=f"q{number}", last_seen_at=timezone.now()) for number in range(10)
    )
    broadcast = Broadcast.objects.create(title="Locks", text="Hi", audience={"filters": {}})
    actions.start_broadcast(broadcast, by=None)
    actions._freeze_chunk(broadcast.pk)
    broadcast.refresh_from_db()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "SELECT subscriber_id FROM broadcasts_delivery WHERE broadcast_id = %s ORDER BY subscriber_id "
                "LIMIT 5 FOR UPDATE",
                [broadcast.pk],
            )
            held = {row[0] for row in cursor.fetchall()}
            claimed = {subscriber.pk for subscriber in actions._claim(broadcast)}
            cursor.execute("ROLLBACK")
    finally:
        other.close()
    assert len(claimed) == 5 and not claimed & held
