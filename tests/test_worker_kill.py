"""A real `manage.py db_worker` killed with SIGKILL in the middle of a bulk change loses nothing.

The operation is left running; the sweep notices it and queues it again; another
worker resumes it from its last committed chunk and finishes it with every
subscriber labelled exactly once and exact counts.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from labels.models import Label
from subscribers import actions
from subscribers.actions import STALE_AFTER, resume_stalled_operations
from subscribers.models import Channel, LabelOperation, LabelOperationMember, Subscriber, SubscriberLabel

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

SUBSCRIBERS = 3_000
# Chunks are windows of CHUNK_SIZE ids. Spreading the ids (as deletions do in real tables) gives this many
# subscribers per chunk, so the operation has a couple of hundred chunks and the worker can be killed halfway.
PER_CHUNK = 15
WAIT = 120  # seconds: the longest any step may take before the test gives up


@pytest.fixture
def start_worker(tmp_path):
    """Start `manage.py db_worker` processes on the test database; kill whatever is left at the end."""
    workers = []
    database = connection.settings_dict
    if connection.vendor == "sqlite":  # a file (conftest): the worker opens it as the tests do
        url = f"sqlite:///{database['NAME']}"
    else:
        url = (
            f"postgres://{quote(database['USER'] or '')}:{quote(database['PASSWORD'] or '')}"
            f"@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{quote(database['NAME'])}"
        )
    environment = {**os.environ, "DATABASE_URL": url, "TASKS_BACKEND": "django_tasks_db.DatabaseBackend"}

    def start():
        log = (tmp_path / f"worker-{len(workers) + 1}.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay", "--no-reload"],
            cwd=Path(settings.BASE_DIR),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers.append((worker, log))
        return worker

    yield start
    for worker, log in workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=WAIT)
        log.close()


def _wait_until(condition, what, worker):
    deadline = time.monotonic() + WAIT
    while not condition():
        if worker.poll() is not None:
            pytest.fail(f"The worker exited with {worker.returncode} while waiting until {what}.")
        if time.monotonic() > deadline:
            pytest.fail(f"Gave up after {WAIT} s waiting until {what}.")
        time.sleep(0.01)


def _state(operation_id):
    return LabelOperation.objects.get(pk=operation_id)


def test_a_killed_worker_loses_nothing_and_another_one_finishes_the_operation(start_worker):
    messenger = Channel.objects.get(name="messenger")
    spacing = actions.CHUNK_SIZE // PER_CHUNK
    Subscriber.objects.bulk_create(
        Subscriber(pk=number * spacing, channel=messenger, foreign_id=f"psid-{number}")
        for number in range(1, SUBSCRIBERS + 1)
    )
    vip = Label.objects.create(title="VIP", name="vip")
    call_command("label_subscribers", "add", "vip", "--background", stdout=StringIO())
    operation_id = LabelOperation.objects.get().pk

    first = start_worker()
    _wait_until(lambda: _state(operation_id).selected_count > 0, "the first chunk committed", first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=WAIT)

    killed = _state(operation_id)
    assert killed.status == LabelOperation.Status.RUNNING
    assert 0 < killed.selected_count < SUBSCRIBERS, "the worker finished before it could be killed"
    # What committed is whole: every chunk's assignments, members and counts, and nothing past its last id.
    carriers = SubscriberLabel.objects.filter(label=vip)
    assert carriers.count() == killed.changed_count == killed.selected_count
    assert LabelOperationMember.objects.filter(operation_id=operation_id).count() == killed.changed_count
    assert not carriers.filter(subscriber_id__gt=killed.last_subscriber_id).exists()

    # The sweep of any worker notices the silence once STALE_AFTER has passed.
    assert resume_stalled_operations(now=timezone.now() + STALE_AFTER + timedelta(seconds=1)) == [operation_id]
    second = start_worker()
    _wait_until(lambda: _state(operation_id).is_finished, "the operation finished", second)

    done = _state(operation_id)
    assert done.status == LabelOperation.Status.DONE
    assert (done.total_count, done.selected_count, done.changed_count, done.changed_subscribers) == (
        SUBSCRIBERS,
        SUBSCRIBERS,
        SUBSCRIBERS,
        SUBSCRIBERS,
    )
    assert carriers.count() == SUBSCRIBERS
    assert LabelOperationMember.objects.filter(operation_id=operation_id).count() == SUBSCRIBERS
    assert vip.tally.subscribers == SUBSCRIBERS
