"""Old uploads go: files of imports never started or ended IMPORT_KEEP_HOURS ago, by the sweep and a command."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from subscribers import actions, imports
from subscribers.management.commands.db_worker import SWEEPS
from subscribers.models import Subscriber, SubscriberImport, SubscriberImportProblem, SubscriberImportRow

pytestmark = pytest.mark.django_db

BAD_FILE = "channel,foreign_id,gender\nmessenger,1,male\nmessenger,2,robot\n"


def upload(text=BAD_FILE) -> SubscriberImport:
    return imports.record_upload(imports.store_file(io.BytesIO(text.encode()), "people.csv"))


def run(text=BAD_FILE, *, dry_run=False) -> SubscriberImport:
    job = upload(text)
    actions.start_subscriber_import(job, dry_run=dry_run, background=False)
    return actions.run_subscriber_import(job.pk)


def file_of(job):
    return imports.import_dir() / job.file_name


def later(hours):
    return timezone.now() + timedelta(hours=hours)


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """remove_old_import_files as of `now`, with its after-commit file deletions run."""

    def run_sweep(now=None):
        with django_capture_on_commit_callbacks(execute=True):
            return actions.remove_old_import_files(now)

    return run_sweep


def test_an_upload_never_started_goes_with_its_file_after_a_day(sweep):
    job = upload()
    path = file_of(job)

    assert sweep(later(23)) == {"drafts": 0, "files": 0, "strays": 0}
    assert path.exists() and SubscriberImport.objects.filter(pk=job.pk).exists()

    assert sweep(later(25)) == {"drafts": 1, "files": 0, "strays": 0}
    assert not path.exists() and not SubscriberImport.objects.filter(pk=job.pk).exists()


def test_a_dry_run_changed_back_to_settings_goes_with_what_it_reported(sweep):
    job = run(dry_run=True)
    SubscriberImport.objects.filter(pk=job.pk).update(status=SubscriberImport.Status.DRAFT)

    sweep(later(25))

    assert not SubscriberImport.objects.filter(pk=job.pk).exists()
    assert not SubscriberImportProblem.objects.filter(job_id=job.pk).exists()


def test_an_ended_import_keeps_its_report_and_loses_its_file_and_staged_rows(settings, sweep):
    job = run()
    path = file_of(job)
    # As if its worker had died before clearing them.
    SubscriberImportRow.objects.create(job=job, row=99, offset=0, channel_id=1, foreign_id="x")

    assert sweep(later(25)) == {"drafts": 0, "files": 1, "strays": 0}

    job.refresh_from_db()
    assert not path.exists() and job.file_name == "" and job.staging_cleared
    assert (job.status, job.created_count, job.rejected_count) == ("done", 1, 1)
    assert job.problems.count() == 1
    assert not SubscriberImportRow.objects.filter(job=job).exists()
    assert Subscriber.objects.count() == 1, "what it imported stays"
    assert sweep(later(50)) == {"drafts": 0, "files": 0, "strays": 0}


def test_the_hours_come_from_the_setting(settings, sweep):
    settings.IMPORT_KEEP_HOURS = 2
    job = run()

    sweep(later(3))

    assert not file_of(SubscriberImport.objects.get(pk=job.pk)).is_file()


@pytest.mark.parametrize("status", ["pending", "running"])
def test_an_unfinished_import_keeps_its_file_however_old(status, sweep):
    job = upload()
    SubscriberImport.objects.filter(pk=job.pk).update(status=status, created_at=later(-100))

    assert sweep(later(100)) == {"drafts": 0, "files": 0, "strays": 0}
    assert file_of(job).exists()


def test_an_old_file_no_import_names_goes_and_a_new_one_stays(sweep):
    old, new = imports.import_dir() / "import-old.csv", imports.import_dir() / "import-new.csv"
    old.write_text("half an upload")
    new.write_text("an upload being written")
    two_days_ago = time.time() - 48 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    named = upload()
    os.utime(file_of(named), (two_days_ago, two_days_ago))

    assert sweep()["strays"] == 1
    assert not old.exists() and new.exists() and file_of(named).exists()


def test_every_worker_sweeps_for_old_files():
    assert actions.remove_old_import_files in SWEEPS


def test_the_command_removes_them_now_and_says_how_many(settings, capsys, django_capture_on_commit_callbacks):
    settings.IMPORT_KEEP_HOURS = 0.0001
    upload()
    ended = run()
    time.sleep(0.5)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("remove_old_import_files")

    assert "Removed 1 import(s) never started, the files of 1 ended import(s)" in capsys.readouterr().out
    assert SubscriberImport.objects.get() == ended
    assert not list(imports.import_dir().iterdir())


@pytest.fixture
def signed_in(operator):
    operator.user_permissions.add(Permission.objects.get(codename="import_subscribers"))
    client = Client()
    client.force_login(operator)
    return client


def test_the_report_says_the_file_is_gone_and_offers_no_download(signed_in, sweep):
    job = run(dry_run=True)
    sweep(later(25))

    page = signed_in.get(job.get_absolute_url()).content.decode()
    assert "The uploaded file was deleted" in page
    assert "rejected row (CSV)" not in page and "Import now" not in page

    response = signed_in.get(f"/subscribers/import/{job.pk}/rejected.csv", follow=True)
    assert "was deleted: upload it again" in response.content.decode()
    response = signed_in.post(job.get_absolute_url(), {"action": "import"}, follow=True)
    assert "was deleted: upload it again" in response.content.decode()
    assert SubscriberImport.objects.get(pk=job.pk).dry_run and not Subscriber.objects.exists()
