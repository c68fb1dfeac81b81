"""A real `manage.py db_worker` killed with SIGKILL in the middle of an import loses nothing.

The import is left running; the sweep notices it and queues it again; another
worker resumes it from its last committed chunk (checking or importing) and
finishes it with every row imported once and exact counts.
"""

import io
import signal
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from labels.models import Label
from subscribers import actions, imports
from subscribers.models import LabelOperationMember, Subscriber, SubscriberImport, SubscriberImportRow, SubscriberLabel
from tests.test_worker_kill import WAIT, start_worker  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

ROWS = 12 * imports.CHUNK_ROWS


def _wait_until(condition, what, worker):
    deadline = time.monotonic() + WAIT
    while not condition():
        if failed := SubscriberImport.objects.filter(status="failed").first():
            pytest.fail(f"The import failed: {failed.error}")
        if worker.poll() is not None:
            pytest.fail(f"The worker exited with {worker.returncode} while waiting until {what}.")
        if time.monotonic() > deadline:
            pytest.fail(f"Gave up after {WAIT} s waiting until {what}.")
        time.sleep(0.01)


@pytest.fixture
def worker_sees_the_files(settings, monkeypatch):
    monkeypatch.setenv("IMPORT_DIR", str(settings.IMPORT_DIR))


@pytest.mark.parametrize("stage", ["reading", "merging"])
def test_a_worker_killed_mid_import_loses_nothing_and_another_one_finishes_it(
    worker_sees_the_files,  # before start_worker, which copies the environment
    start_worker,  # noqa: F811
    stage,
):
    vip = Label.objects.create(title="VIP", name="vip")
    text = "channel,foreign_id,first_name,labels\n" + "".join(f"messenger,p{n},Name {n},vip\n" for n in range(ROWS))
    job = imports.record_upload(imports.store_file(io.BytesIO(text.encode()), "big.csv"))
    with transaction.atomic():
        actions.start_subscriber_import(job, dry_run=False)

    def state():
        return SubscriberImport.objects.get(pk=job.pk)

    first = start_worker()
    if stage == "reading":
        _wait_until(lambda: state().rows_read > 0, "the first chunk was checked", first)
    else:
        _wait_until(lambda: state().rows_merged > 0, "the first chunk was imported", first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=WAIT)

    killed = state()
    assert killed.status == "running" and killed.stage == stage
    assert killed.rows_read < ROWS or killed.rows_merged < ROWS, "the worker finished before it could be killed"
    # What committed is whole: each chunk's staged rows, subscribers, labels, members and counts together.
    if stage == "reading":
        assert SubscriberImportRow.objects.filter(job=job).count() == killed.rows_read
    assert Subscriber.objects.count() == killed.created_count
    assert SubscriberLabel.objects.count() == killed.labels_added
    if killed.add_operation_id:
        assert LabelOperationMember.objects.filter(operation_id=killed.add_operation_id).count() == killed.labels_added

    assert actions.resume_stalled_imports(now=timezone.now() + actions.STALE_AFTER + timedelta(seconds=1)) == [job.pk]
    second = start_worker()
    _wait_until(lambda: state().is_finished, "the import finished", second)

    done = state()
    assert (done.status, done.rows_read, done.created_count, done.labels_added, done.rejected_count) == (
        "done",
        ROWS,
        ROWS,
        ROWS,
        0,
    )
    assert Subscriber.objects.count() == ROWS and SubscriberLabel.objects.count() == ROWS
    assert LabelOperationMember.objects.filter(operation_id=done.add_operation_id).count() == ROWS
    assert vip.tally.subscribers == ROWS
    _wait_until(lambda: state().staging_cleared, "the staged rows were deleted", second)
    assert not SubscriberImportRow.objects.filter(job=job).exists()
