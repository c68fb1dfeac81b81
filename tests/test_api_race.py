import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

import subscribers.actions
from subscribers.models import Subscriber
from webhooks.models import Delivery, Endpoint, Event

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serialises writers, so two first contacts cannot race; run with DATABASE_URL=postgres://…",
    ),
    pytest.mark.django_db(transaction=True),
]

THREADS = 4


def test_simultaneous_first_contacts_create_one_subscriber(api_key, messenger, monkeypatch):
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=list(Event.values))
    all_looked = threading.Barrier(THREADS, timeout=10)
    original = subscribers.actions._mark_seen

    def look_then_wait(*args, **kwargs):
        found = original(*args, **kwargs)
        # Every thread has seen "no such subscriber" before any inserts: the real race, every time.
        all_looked.wait()
        return found

    monkeypatch.setattr(subscribers.actions, "_mark_seen", look_then_wait)
    statuses, errors = [], []

    def first_contact(number):
        try:
            client = Client(headers={"Authorization": f"Bearer {api_key.full_key}"})
            response = client.put(
                "/api/v1/channels/messenger/subscribers/psid-race",
                json.dumps({"first_name": f"Racer {number}", "last_name": "Lovelace"}),
                content_type="application/json",
            )
            statuses.append(response.status_code)
        except Exception as exc:  # surfaced below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_contact, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(statuses) == [200] * (THREADS - 1) + [201]
    subscriber = Subscriber.objects.get(foreign_id="psid-race")
    assert subscriber.search_name == subscriber.first_name.lower() + " lovelace"
    events = list(Delivery.objects.values_list("event", flat=True))
    assert events.count(Event.SUBSCRIBER_CREATED) == 1
    assert events.count(Event.SUBSCRIBER_UPDATED) <= THREADS - 1, "each later racer that changed the name"


def test_simultaneous_batches_naming_the_same_people_neither_fail_nor_deadlock(api_key, messenger):
    people = [{"foreign_id": f"p-{number}", "first_name": "Batch"} for number in range(200)]
    statuses, errors = [], []
    start = threading.Barrier(THREADS, timeout=10)

    def sync(number):
        try:
            client = Client(headers={"Authorization": f"Bearer {api_key.full_key}"})
            ordered = people if number % 2 else list(reversed(people))
            start.wait()
            response = client.post(
                "/api/v1/subscribers/batch",
                json.dumps({"channel": "messenger", "subscribers": ordered}),
                content_type="application/json",
            )
            statuses.append(response.status_code)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sync, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert statuses == [200] * THREADS
    assert Subscriber.objects.filter(foreign_id__startswith="p-").count() == 200
