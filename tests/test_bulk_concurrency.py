import threading

import pytest
from django.db import connection, connections

from subscribers.actions import add_labels, remove_labels
from subscribers.models import LabelChange, Subscriber, SubscriberLabel

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite lets one writer in at a time, so bulk changes cannot overlap; run with DATABASE_URL=postgres://…",
    ),
    pytest.mark.django_db(transaction=True),
]


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
    # Each assignment was recorded once, by whichever change really made it.
    assert LabelChange.objects.filter(action="added").count() == 600


def test_an_addition_and_a_removal_overlapping_leave_a_consistent_history(make_subscriber, make_label):
    people = [make_subscriber() for _ in range(200)]
    vip = make_label("VIP")
    add_labels(Subscriber.objects.filter(pk__lte=people[99].pk), [vip])

    errors = _run_together(
        lambda: remove_labels(Subscriber.objects.all(), [vip]),
        lambda: add_labels(Subscriber.objects.filter(pk__gt=people[49].pk), [vip]),
    )

    assert errors == []
    carriers = SubscriberLabel.objects.filter(label=vip).count()
    added = LabelChange.objects.filter(action="added").count()
    removed = LabelChange.objects.filter(action="removed").count()
    # Whatever order the two ran in, the history adds up to what is stored.
    assert added - removed == carriers
    assert carriers in {0, 150}
