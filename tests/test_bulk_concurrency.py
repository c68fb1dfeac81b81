import threading
from collections import Counter

import pytest
from django.db import connection, connections

from subscribers import actions
from subscribers.actions import add_labels, remove_labels
from subscribers.models import LabelOperation, LabelOperationMember, Subscriber, SubscriberLabel

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite lets one writer in at a time, so bulk changes cannot overlap; run with DATABASE_URL=postgres://…",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Several chunks per operation, so that the operations' chunks interleave."""
    monkeypatch.setattr(actions, "CHUNK_SIZE", 50)


def _members(kind):
    return LabelOperationMember.objects.filter(operation__kind=kind)


def _run_together(*changes):
    """Start every change at the same moment, each on its own connection; return what they raised."""
    start = threading.Barrier(len(changes), timeout=10)
    errors = []

    def run(change):
        try:
            start.wait()
            change()
        except Exception as error:  # collected and asserted on below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=[change]) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_overlapping_bulk_additions_neither_deadlock_nor_lose_or_double_anything(make_subscriber, make_label):
    people = [make_subscriber() for _ in range(300)]
    vip, news = make_label("VIP"), make_label("Newsletter")
    first_half = Subscriber.objects.filter(pk__lte=people[199].pk)
    second_half = Subscriber.objects.filter(pk__gte=people[100].pk)

    errors = _run_together(
        lambda: add_labels(first_half, [vip, news]),
        lambda: add_labels(second_half, [news, vip]),
        lambda: add_labels(Subscriber.objects.filter(pk__gt=people[249].pk), [vip]),
    )

    assert errors == []
    assert SubscriberLabel.objects.count() == 600
    # Each assignment was recorded once, by whichever operation really made it, and counted once.
    assert _members("add").count() == 600
    assert sum(LabelOperation.objects.values_list("changed_count", flat=True)) == 600
    assert set(LabelOperation.objects.values_list("status", flat=True)) == {"done"}


def test_an_addition_and_a_removal_overlapping_leave_a_consistent_history(make_subscriber, make_label):
    people = [make_subscriber() for _ in range(200)]
    vip = make_label("VIP")
    add_labels(Subscriber.objects.filter(pk__lte=people[99].pk), [vip])

    errors = _run_together(
        lambda: remove_labels(Subscriber.objects.all(), [vip]),
        lambda: add_labels(Subscriber.objects.filter(pk__gt=people[49].pk), [vip]),
    )

    assert errors == []
    # Whatever order their chunks ran in, each subscriber's history adds up to what is stored.
    carriers = set(SubscriberLabel.objects.filter(label=vip).values_list("subscriber_id", flat=True))
    added = Counter(_members("add").values_list("subscriber_id", flat=True))
    removed = Counter(_members("remove").values_list("subscriber_id", flat=True))
    assert {person.pk: added[person.pk] - removed[person.pk] for person in people} == {
        person.pk: int(person.pk in carriers) for person in people
    }
    assert sum(LabelOperation.objects.filter(kind="add").values_list("changed_count", flat=True)) == (
        _members("add").count()
    )
