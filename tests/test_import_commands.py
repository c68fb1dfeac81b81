"""The import_subscribers and export_subscribers commands: output, files written and exit statuses."""

import csv

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from subscribers.models import Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db


def run(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_a_file_prints_progress_and_the_summary(tmp_path, make_label):
    make_label("VIP", name="vip")
    path = tmp_path / "people.csv"
    path.write_text("channel,foreign_id,first_name,labels,shoe size\nmessenger,1,Ada,vip,38\nweb,2,Bob,,44\n")
    out, err = run("import_subscribers", str(path))
    assert "Import #" in out and "about 2 rows" in out
    assert "Created 2 subscribers, changed 0, left 0 as they were. Labels: 1 added, 0 removed." in out
    assert "Columns ignored: shoe size." in err
    assert SubscriberLabel.objects.get().subscriber.first_name == "Ada"


def test_rejected_rows_are_written_beside_the_file_and_the_exit_status_says_so(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("channel,foreign_id\nmessenger,1\nnope,2\n")
    with pytest.raises(CommandError, match="1 rows rejected") as error:
        run("import_subscribers", str(path))
    assert error.value.returncode == 3
    rejected = list(csv.reader((tmp_path / "people.rejected.csv").open()))
    assert rejected == [
        ["channel", "foreign_id", "error"],
        ["nope", "2", "channel: There is no channel named “nope” (channels: console, messenger, web)."],
    ]
    assert Subscriber.objects.count() == 1


def test_a_dry_run_changes_nothing(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("channel,foreign_id\nmessenger,1\n")
    out, _ = run("import_subscribers", str(path), "--dry-run")
    assert "Would create 1 subscriber" in out and not Subscriber.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "There is no file"),
        (["people.csv", "--channel", "fax"], "there is no channel named fax"),
        (["people.csv", "--mode", "labels-add"], "needs the column that holds the labels"),
        (["empty.csv"], "The file is empty"),
    ],
)
def test_bad_files_and_options_exit_non_zero_and_import_nothing(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text("channel,foreign_id\nmessenger,1\n")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CommandError, match=message) as error:
        run("import_subscribers", *args)
    assert error.value.returncode == 1 and not Subscriber.objects.exists()


def test_modes_and_label_options(tmp_path, make_subscriber):
    make_subscriber(foreign_id="1")
    path = tmp_path / "labels.csv"
    path.write_text("channel,foreign_id,labels\nmessenger,1,Gold\n")
    run("import_subscribers", str(path), "--mode", "labels-add", "--create-labels")
    assert list(SubscriberLabel.objects.values_list("label__name", flat=True)) == ["gold"]
    run("import_subscribers", str(path), "--mode", "labels-remove")
    assert not SubscriberLabel.objects.exists()


def test_export_writes_the_filter_to_a_file_and_imports_back_unchanged(tmp_path, make_subscriber, make_label):
    vip = make_label("VIP", name="vip")
    ada = make_subscriber(foreign_id="1", first_name="=1+1", locale="fr")
    make_subscriber(foreign_id="2", locale="en-US")
    SubscriberLabel.objects.create(subscriber=ada, label=vip)
    path = tmp_path / "out.csv"
    _, err = run("export_subscribers", "--filter", "locale=fr", "--output", str(path))
    assert "1 subscribers written" in err
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("messenger,1,'=1+1,")
    out, _ = run("import_subscribers", str(path))
    assert "Nothing changed: the 1 row matches the subscribers as they are." in out


def test_export_refuses_a_bad_filter(capsys):
    with pytest.raises(CommandError, match="shoe is not a filter"):
        run("export_subscribers", "--filter", "shoe=44")
    with pytest.raises(CommandError, match="no label named"):
        run("export_subscribers", "--filter", "label=nope")


def test_export_writes_to_standard_output(make_subscriber, capsys):
    make_subscriber(foreign_id="1")
    call_command("export_subscribers")
    assert capsys.readouterr().out.startswith("channel,foreign_id,")
