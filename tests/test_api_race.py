import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

import subscribers.actions
from subscribers.models import Subscriber

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serialises writers, so two first contacts cannot race; run with DATABASE_URL=postgres://…",
    ),
    pytest.mark.django_db(transaction=True),
]

THREADS = 4


def test_simultaneous_first_contacts_create_one_subscriber(api_key, messenger, monkeypatch):
    both_looked = threading.Barrier(THREADS, timeout=10)
    original = subscribers.actions._locked
    looked = threading.local()

    def lookup_then_wait(channel, foreign_id):
        found = original(channel, foreign_id)
        if not getattr(looked, "once", False):
            # Every thread has seen "no such subscriber" before any inserts: the real race, every time.
            looked.once = True
            both_looked.wait()
        return found

    monkeypatch.setattr(subscribers.actions, "_locked", lookup_then_wait)
    statuses, errors = [], []

    def first_contact(number):
        try:
            client = Client(headers={"Authorization": f"Bearer {api_key.full_key}"})
            response = client.put(
                "/api/v1/channels/messenger/subscribers/psid-race",
                json.dumps({"first_name": f"Racer {number}"}),
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
    assert Subscriber.objects.filter(foreign_id="psid-race").count() == 1
