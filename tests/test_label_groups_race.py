"""Exclusive label groups under concurrent changes (issue 14): whoever comes second, one label of the group stays.

Real transactions on PostgreSQL, one connection per thread, as in test_api_race.py.
"""

import json
import threading
import time

import pytest
from django.db import connection, connections
from django.test import Client

import subscribers.actions
from labels.models import Label, LabelGroup
from subscribers.models import LabelSource, Subscriber, SubscriberLabel

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serialises writers, so two changes cannot race; run with DATABASE_URL=postgres://…",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def plan(db):
    group = LabelGroup.objects.create(title="Plan", name="plan", exclusive=True)
    return {name: Label.objects.create(title=name.title(), name=name, group=group) for name in ("free", "pro")}


def _in_threads(*targets):
    errors = []

    def run(target):
        try:
            target()
        except Exception as exc:  # surfaced below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []


def _slow_inserts(monkeypatch, seconds=0.3):
    """Each insert of assignments waits a little before its transaction goes on: without a lock, both
    requests would have inserted their label before either took the group's other labels away."""
    original = subscribers.actions._apply

    def apply_then_wait(kind, pairs, **kwargs):
        changed = original(kind, pairs, **kwargs)
        if kind == "add":
            time.sleep(seconds)
        return changed

    monkeypatch.setattr(subscribers.actions, "_apply", apply_then_wait)


def test_two_api_requests_adding_two_labels_of_one_exclusive_group_end_with_one(api_key, messenger, plan, monkeypatch):
    Subscriber.objects.create(channel=messenger, foreign_id="psid-race")
    both_checked = threading.Barrier(2, timeout=10)
    original = subscribers.actions.exclusive_groups_of

    def check_then_wait(label_ids):
        groups = original(label_ids)
        both_checked.wait()  # both requests are past the check, neither has locked anything yet
        return groups

    monkeypatch.setattr(subscribers.actions, "exclusive_groups_of", check_then_wait)
    _slow_inserts(monkeypatch)
    statuses = []

    def add(name):
        def request():
            client = Client(headers={"Authorization": f"Bearer {api_key.full_key}"})
            response = client.post(
                "/api/v1/channels/messenger/subscribers/psid-race/labels",
                json.dumps({"add": [name]}),
                content_type="application/json",
            )
            statuses.append(response.status_code)

        return request

    _in_threads(add("free"), add("pro"))

    assert statuses == [200, 200]
    kept = list(
        SubscriberLabel.objects.filter(subscriber__foreign_id="psid-race").values_list("label__name", flat=True)
    )
    assert len(kept) == 1
    lost = "pro" if kept == ["free"] else "free"
    removal = subscribers.models.LabelChange.objects.get(action="removed")
    assert (removal.label_name, removal.source) == (lost, LabelSource.EXCLUSIVE_GROUP)


def test_a_single_change_during_a_bulk_chunk_of_the_same_group_ends_with_one_label(messenger, plan, monkeypatch):
    ada = Subscriber.objects.create(channel=messenger, foreign_id="psid-1")
    operation = subscribers.actions.start_label_operation(
        "add", [plan["pro"]], source=LabelSource.BULK, selection={"filters": {}, "ids": [ada.pk]}
    )
    chunk_inserted = threading.Barrier(2, timeout=10)
    original = subscribers.actions._change_chunk_in_one_statement

    def chunk_then_wait(*args):
        result = original(*args)
        chunk_inserted.wait()  # the chunk has given "pro" and not committed: the single change starts now
        time.sleep(0.3)
        return result

    monkeypatch.setattr(subscribers.actions, "_change_chunk_in_one_statement", chunk_then_wait)

    def single_change():
        chunk_inserted.wait()
        subscribers.actions.change_labels(Subscriber.objects.get(pk=ada.pk), add=[plan["free"]])

    _in_threads(lambda: subscribers.actions.run_label_operation(operation.pk), single_change)

    # The single change waited for the chunk, then took its "pro" away: it came last.
    assert list(SubscriberLabel.objects.filter(subscriber=ada).values_list("label__name", flat=True)) == ["free"]
