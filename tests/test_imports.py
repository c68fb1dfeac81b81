"""The import engine (subscribers.actions, its imports section): every mode, bad rows, labels, resume, cancel."""

import io
import json

import pytest
from django.db import connection

from labels.models import Label
from subscribers import actions, exports, imports
from subscribers.models import (
    LabelOperation,
    LabelOperationMember,
    LabelSource,
    Subscriber,
    SubscriberImport,
    SubscriberImportProblem,
    SubscriberImportRow,
    SubscriberLabel,
)
from subscribers.queries import label_history
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

HEADER = "channel,foreign_id,first_name,last_name,gender,locale,timezone,country,labels\n"


def upload(text: str | bytes, name="people.csv", **settings) -> SubscriberImport:
    data = text.encode() if isinstance(text, str) else text
    job = imports.record_upload(imports.store_file(io.BytesIO(data), name))
    for field, value in settings.items():
        setattr(job, field, value)
    job.save()
    return job


def run(text, *, dry_run=False, by=None, **settings) -> SubscriberImport:
    job = upload(text, **settings)
    actions.start_subscriber_import(job, dry_run=dry_run, by=by, background=False)
    return actions.run_subscriber_import(job.pk)


def problems(job):
    return list(job.problems.order_by("row").values_list("row", "columns", "reason"))


def people():
    return {
        s.foreign_id: (s.first_name, s.last_name, s.gender, s.locale, s.timezone, str(s.country))
        for s in Subscriber.objects.all()
    }


def labels_of(foreign_id):
    return sorted(
        SubscriberLabel.objects.filter(subscriber__foreign_id=foreign_id).values_list("label__name", flat=True)
    )


@pytest.fixture
def vip(make_label):
    return make_label("VIP customers", name="vip")


@pytest.fixture
def newsletter(make_label):
    return make_label("Newsletter", name="newsletter")


# --- Upsert, create only, labels only ---------------------------------------------------------------


def test_upsert_creates_new_subscribers_with_their_labels(vip, newsletter):
    job = run(
        HEADER + "messenger,1,Ada,Lovelace,female,en-GB,0,GB,vip|newsletter\nweb,2,Bob,,male,fr,Europe/Paris,fr,\n"
    )

    assert job.status == "done" and (job.created_count, job.updated_count, job.rejected_count) == (2, 0, 0)
    assert people() == {
        "1": ("Ada", "Lovelace", "female", "en-GB", "0", "GB"),
        "2": ("Bob", "", "male", "fr", "Europe/Paris", "FR"),
    }
    assert labels_of("1") == ["newsletter", "vip"] and labels_of("2") == []
    assert job.summary() == "Created 2 subscribers, changed 0, left 0 as they were. Labels: 2 added, 0 removed."


def test_upsert_updates_what_changed_and_leaves_the_rest(make_subscriber, messenger):
    ada = make_subscriber(foreign_id="1", first_name="Ada", last_name="Byron", locale="en-GB")
    same = make_subscriber(foreign_id="2", first_name="Bob", last_name="Marley", locale="en-US")
    before = (ada.updated_at, same.updated_at)
    job = run("channel,foreign_id,last_name\nmessenger,1,Lovelace\nmessenger,2,Marley\n")

    ada.refresh_from_db(), same.refresh_from_db()
    assert (ada.first_name, ada.last_name, ada.locale) == ("Ada", "Lovelace", "en-GB"), "columns not in the file stay"
    assert ada.updated_at > before[0] and same.updated_at == before[1]
    assert (job.created_count, job.updated_count, job.unchanged_count) == (0, 1, 1)


def test_create_only_rejects_existing_subscribers(make_subscriber):
    make_subscriber(foreign_id="1", first_name="Ada")
    job = run("channel,foreign_id,first_name\nmessenger,1,Changed\nmessenger,2,New\n", mode="create")

    assert people()["1"][0] == "Ada" and people()["2"][0] == "New"
    assert problems(job) == [
        (
            2,
            "foreign_id",
            "A subscriber with this channel and foreign id exists already: “create only” leaves them alone.",
        )
    ]
    assert (job.created_count, job.rejected_count) == (1, 1)


def test_labels_add_gives_labels_to_existing_subscribers_only(make_subscriber, vip, newsletter):
    make_subscriber(foreign_id="1", first_name="Ada")
    job = run(
        "channel,foreign_id,first_name,labels\nmessenger,1,Ignored,vip|newsletter\nmessenger,404,X,vip\n",
        mode="labels_add",
    )

    assert labels_of("1") == ["newsletter", "vip"] and people()["1"][0] == "Ada", "labels only: names are not read"
    assert Subscriber.objects.count() == 1
    assert problems(job) == [(3, "foreign_id", "No subscriber has this channel and foreign id.")]


def test_labels_remove_takes_the_files_labels_away(make_subscriber, vip, newsletter):
    ada = make_subscriber(foreign_id="1")
    SubscriberLabel.objects.create(subscriber=ada, label=vip)
    SubscriberLabel.objects.create(subscriber=ada, label=newsletter)
    job = run("channel,foreign_id,labels\nmessenger,1,vip\n", mode="labels_remove")

    assert labels_of("1") == ["newsletter"]
    assert (job.labels_added, job.labels_removed, job.updated_count) == (0, 1, 1)


def test_labels_are_added_to_a_subscribers_labels_by_default(make_subscriber, vip, newsletter):
    ada = make_subscriber(foreign_id="1")
    SubscriberLabel.objects.create(subscriber=ada, label=newsletter)
    run("channel,foreign_id,labels\nmessenger,1,vip\n")
    assert labels_of("1") == ["newsletter", "vip"]


def test_labels_replace_a_subscribers_labels_when_asked(make_subscriber, vip, newsletter):
    ada = make_subscriber(foreign_id="1")
    bob = make_subscriber(foreign_id="2")
    for person in (ada, bob):
        SubscriberLabel.objects.create(subscriber=person, label=newsletter)
    job = run("channel,foreign_id,labels\nmessenger,1,vip\nmessenger,2,\n", replace_labels=True)

    assert labels_of("1") == ["vip"] and labels_of("2") == [], "an empty cell takes every label away"
    assert (job.labels_added, job.labels_removed) == (1, 2)


def test_labels_are_found_by_name_or_by_title(make_subscriber, vip):
    make_subscriber(foreign_id="1")
    run("channel,foreign_id,labels\nmessenger,1,vip customers\n")
    assert labels_of("1") == ["vip"]


# --- Unknown labels -------------------------------------------------------------------------------


def test_unknown_labels_are_created_when_asked(make_subscriber):
    job = run("channel,foreign_id,labels\nmessenger,1,Gold members|gold_members\n", create_labels=True)

    gold = Label.objects.get(title="Gold members")
    assert gold.name == "gold_members" and Label.objects.count() == 1, "the second names the one just made"
    assert labels_of("1") == ["gold_members"] and job.new_labels == ["gold_members"]


def test_unknown_labels_reject_their_rows_otherwise():
    job = run("channel,foreign_id,labels\nmessenger,1,Gold\nmessenger,2,\n")

    assert not Label.objects.exists() and set(people()) == {"2"}
    assert problems(job) == [(2, "labels", "There is no label named or titled “Gold”.")]


def test_a_label_the_add_dialog_would_refuse_rejects_its_row():
    job = run("channel,foreign_id,labels\nmessenger,1," + "x" * 101 + "\n", create_labels=True)
    assert not Label.objects.exists()
    [(row, column, reason)] = problems(job)
    assert (row, column) == (2, "labels") and "cannot be created" in reason and "100 characters" in reason


def test_a_dry_run_counts_the_labels_it_would_create_and_creates_none(make_subscriber):
    make_subscriber(foreign_id="1")
    job = run(
        "channel,foreign_id,labels\nmessenger,1,Gold|Silver\nmessenger,2,Gold\n", create_labels=True, dry_run=True
    )

    assert not Label.objects.exists() and Subscriber.objects.count() == 1
    assert job.new_labels == ["Gold", "Silver"]
    assert (job.created_count, job.updated_count, job.labels_added) == (1, 1, 3)


# --- Bad rows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ("nope,1,,,,,,", "channel", "There is no channel named “nope” (channels: console, messenger, web)."),
        ("messenger,,,,,,,", "foreign_id", "The foreign id is missing."),
        ("messenger,1,,x,,,,", "gender", "“x” is not a gender: write male, female or other, or leave the cell empty."),
        ("messenger,1,,,english,,,", "locale", "“english” is not a BCP 47 language tag such as en-US or fr."),
        ("messenger,1,,,,Mars/Olympus,,", "timezone", "is neither a UTC offset"),
        ("messenger,1,,,,,XX,", "country", "“XX” is not a country code: write two letters such as FR or US."),
        ("messenger,1,,,,,,25/11/2026", "created_at", "“25/11/2026” is not an ISO 8601 date"),
        ("messenger,1," + "a" * 256 + ",,,,,", "first_name", "It is 256 characters long; 255 at most."),
    ],
)
def test_each_kind_of_bad_cell_rejects_its_row_with_the_column_and_the_reason(cells, column, reason):
    job = run(
        "channel,foreign_id,first_name,gender,locale,timezone,country,created_at\n"
        + cells
        + "\nmessenger,ok,Fine,,,,,\n"
    )

    [(row, columns, text)] = problems(job)
    assert (row, columns) == (2, column) and reason in text
    assert set(people()) == {"ok"}, "accepted rows are applied, the rejected one writes nothing"


def test_a_row_with_several_bad_cells_names_each_column():
    job = run("channel,foreign_id,gender,country\nmessenger,1,x,XX\n")
    [(_, columns, reason)] = problems(job)
    assert columns == "gender, country" and "gender" in reason and "country code" in reason


def test_a_row_with_too_many_or_too_few_cells_is_rejected():
    job = run("channel,foreign_id\nmessenger,1,extra\nmessenger\nmessenger,3\n")
    assert [reason for _, _, reason in problems(job)] == [
        "The row has 3 cells where the header has 2.",
        "The row has 1 cells where the header has 2.",
    ]
    assert set(people()) == {"3"}


def test_a_row_that_is_not_utf8_past_the_files_first_bytes_is_rejected_and_the_others_imported():
    filler = "".join(f"web,{n},Zoë\n" for n in range(imports.SNIFF_BYTES // 10))
    data = f"channel,foreign_id,first_name\n{filler}".encode() + b"messenger,x,Zo\xeb\nmessenger,y,Ok\n"
    job = run(data)
    assert problems(job) == [(job.last_row - 1, "", "The row is not UTF-8 text: save the file as “CSV UTF-8”.")]
    assert Subscriber.objects.count() == imports.SNIFF_BYTES // 10 + 1


def test_blank_lines_are_skipped_and_rows_keep_their_spreadsheet_numbers():
    job = run("channel,foreign_id,gender\nmessenger,1,\n\n,,\nmessenger,2,x\n")
    assert problems(job)[0][0] == 5 and job.rows_read == 2


def test_rejected_rows_come_back_as_they_were_written_with_a_reason():
    job = run('channel;foreign_id;first_name\nweb;1;"Ann; ""the"" first"\nnope;2;=cmd\n', delimiter=";")
    assert list(imports.rejected_rows(job)) == [
        ["channel", "foreign_id", "first_name", "error"],
        ["nope", "2", "'=cmd", "channel: There is no channel named “nope” (channels: console, messenger, web)."],
    ]


# --- Duplicates, re-import, round trip -----------------------------------------------------------


def test_repeated_rows_let_the_last_one_win_and_are_reported(vip, newsletter):
    job = run(
        "channel,foreign_id,first_name,labels\nmessenger,1,First,vip\nmessenger,2,Bob,\nmessenger,1,Last,newsletter\n"
    )

    assert people()["1"][0] == "Last" and labels_of("1") == ["newsletter"]
    assert job.duplicate_count == 1 and job.created_count == 2
    assert list(job.problems.values_list("row", "kind", "reason")) == [
        (2, "duplicate", "Row 4 is the same subscriber (channel and foreign id): the later row was used.")
    ]
    assert "1 row was repeated further down the file: the later one was used." in job.summary()


def test_re_importing_the_same_file_changes_nothing_and_says_so(vip):
    text = HEADER + "messenger,1,Ada,Lovelace,female,en-GB,0,GB,vip\nweb,2,Bob,,,,,,\n"
    run(text, create_labels=True)
    snapshot = (people(), sorted(SubscriberLabel.objects.values_list("subscriber_id", "label_id")))
    operations = LabelOperation.objects.count()

    again = run(text, create_labels=True)
    assert again.changed_nothing and again.unchanged_count == 2
    assert again.summary() == "Nothing changed: the 2 rows match the subscribers as they are."
    assert (people(), sorted(SubscriberLabel.objects.values_list("subscriber_id", "label_id"))) == snapshot
    assert LabelOperation.objects.count() == operations, "an import that changed nothing leaves no bulk change"


def test_an_export_imports_back_without_changing_anything(make_subscriber, vip, newsletter, messenger):
    hostile = make_subscriber(foreign_id="=1+1", first_name='=HYPERLINK("http://x")', last_name="'-2", timezone="-5")
    plain = make_subscriber(
        foreign_id="2", first_name="Zoë", last_name="", gender="female", country="FR", timezone="Europe/Paris"
    )
    SubscriberLabel.objects.create(subscriber=hostile, label=vip)
    SubscriberLabel.objects.create(subscriber=plain, label=vip)
    SubscriberLabel.objects.create(subscriber=plain, label=newsletter)
    text = "".join(exports.csv_chunks(Subscriber.objects.all()))
    assert "'=HYPERLINK" in text and ",-5," in text and "''-2" in text
    before = {
        s.pk: (s.first_name, s.last_name, s.foreign_id, s.updated_at, s.created_at) for s in Subscriber.objects.all()
    }

    job = run(text)
    assert job.changed_nothing and job.rejected_count == 0, problems(job)
    assert {
        s.pk: (s.first_name, s.last_name, s.foreign_id, s.updated_at, s.created_at) for s in Subscriber.objects.all()
    } == before


def test_an_export_imports_into_an_empty_database_as_the_same_subscribers(make_subscriber, vip, messenger):
    ada = make_subscriber(foreign_id="1", first_name="=SUM(A1)", country="GB", gender="female")
    SubscriberLabel.objects.create(subscriber=ada, label=vip)
    text = "".join(exports.csv_chunks(Subscriber.objects.all(), delimiter=";", bom=True))
    created = Subscriber.objects.get().created_at
    Subscriber.objects.all().delete()

    job = run(text)
    assert job.delimiter == ";" and job.created_count == 1
    copy = Subscriber.objects.get()
    assert (copy.first_name, str(copy.country), copy.gender, copy.created_at) == ("=SUM(A1)", "GB", "female", created)
    assert labels_of("1") == ["vip"]


# --- Label history and undo -----------------------------------------------------------------------


def test_label_changes_are_recorded_as_bulk_changes_from_the_import(make_subscriber, vip, newsletter, operator):
    ada = make_subscriber(foreign_id="1")
    SubscriberLabel.objects.create(subscriber=ada, label=newsletter)
    job = run("channel,foreign_id,labels\nmessenger,1,vip\nmessenger,2,vip\n", replace_labels=True, by=operator)

    added, removed = job.add_operation, job.remove_operation
    assert (added.source, added.kind, added.status, added.changed_count, added.label_names) == (
        "import",
        "add",
        "done",
        2,
        ["vip"],
    )
    assert (removed.kind, removed.changed_count, removed.label_names, removed.created_by) == (
        "remove",
        1,
        ["newsletter"],
        operator,
    )
    history = label_history(ada, 10)
    assert {(entry.action, entry.label_name, entry.source) for entry in history} == {
        ("added", "vip", LabelSource.IMPORT),
        ("removed", "newsletter", LabelSource.IMPORT),
    }
    assert added.can_undo and removed.can_undo


def test_undoing_an_imports_label_change_reverses_exactly_it(make_subscriber, vip, operator):
    run("channel,foreign_id,labels\nmessenger,1,vip\nmessenger,2,vip\n", by=operator)
    operation = LabelOperation.objects.get(source="import")
    undo = actions.undo_label_operation(operation, by=operator)
    assert undo.status == "done" and not SubscriberLabel.objects.exists()


def test_the_sweep_of_bulk_changes_leaves_a_running_imports_operations_alone(make_subscriber, vip):
    from datetime import timedelta

    from django.utils import timezone

    job = upload("channel,foreign_id,labels\n" + "".join(f"messenger,{n},vip\n" for n in range(12)))
    actions.start_subscriber_import(job, dry_run=False, background=False)
    while SubscriberImport.objects.get(pk=job.pk).add_operation_id is None:
        actions._import_chunk(job.pk)
    later = timezone.now() + timedelta(hours=1)
    assert actions.resume_stalled_operations(later) == []


# --- Webhooks ------------------------------------------------------------------------------------


def _bodies(event):
    return [
        json.loads(body)["data"]
        for body in Delivery.objects.filter(event=event).order_by("pk").values_list("body", flat=True)
    ]


def test_webhooks_hear_of_an_imports_chunk_with_the_ids_it_created_and_changed(make_subscriber, vip):
    ada = make_subscriber(foreign_id="1", first_name="Ada")
    Endpoint.objects.create(url="https://example.com/hook", secret="s", events=Event.values)
    job = run("channel,foreign_id,first_name,labels\nmessenger,1,Ada L.,vip\nmessenger,2,Bob,\nmessenger,3,Cy,\n")

    assert not Delivery.objects.filter(event__in=[Event.SUBSCRIBER_CREATED, Event.SUBSCRIBER_UPDATED]).exists()
    [chunk] = _bodies(Event.SUBSCRIBERS_IMPORTED)
    bob, cy = Subscriber.objects.filter(foreign_id__in=["2", "3"]).order_by("foreign_id")
    assert chunk == {
        "import": job.pk,
        "batch": f"import-{job.pk}",
        "rows": {"first": 2, "last": 4},
        "fields": ["first_name"],
        "created": [
            {"id": bob.pk, "channel": "messenger", "foreign_id": "2"},
            {"id": cy.pk, "channel": "messenger", "foreign_id": "3"},
        ],
        "updated": [{"id": ada.pk, "channel": "messenger", "foreign_id": "1"}],
    }
    [labels] = _bodies(Event.LABELS_CHANGED)
    assert [row["foreign_id"] for row in labels["subscribers"]] == ["1"] and labels["added"][0]["name"] == "vip"


def test_an_import_sends_one_event_per_chunk_not_one_per_subscriber(small_chunks):
    Endpoint.objects.create(url="https://example.com/hook", secret="s", events=[Event.SUBSCRIBERS_IMPORTED])
    run("channel,foreign_id\n" + "".join(f"messenger,p{n}\n" for n in range(7)))

    chunks = _bodies(Event.SUBSCRIBERS_IMPORTED)
    assert [len(chunk["created"]) for chunk in chunks] == [3, 3, 1]
    assert [chunk["rows"] for chunk in chunks] == [
        {"first": 2, "last": 4},
        {"first": 5, "last": 7},
        {"first": 8, "last": 8},
    ]
    assert sorted(row["foreign_id"] for chunk in chunks for row in chunk["created"]) == [f"p{n}" for n in range(7)]


def test_endpoints_listening_to_created_or_updated_hear_of_imports_too():
    Endpoint.objects.create(url="https://example.com/created", secret="s", events=[Event.SUBSCRIBER_CREATED])
    Endpoint.objects.create(url="https://example.com/labels", secret="s", events=[Event.LABELS_CHANGED])
    run("channel,foreign_id\nmessenger,1\n")

    assert list(Delivery.objects.values_list("endpoint__url", "event")) == [
        ("https://example.com/created", "subscribers.imported")
    ]


def test_a_large_chunk_is_sent_in_requests_of_at_most_a_thousand_subscribers(monkeypatch):
    from subscribers import events

    monkeypatch.setattr(events, "IMPORTED_CHUNK_SIZE", 2)
    Endpoint.objects.create(url="https://example.com/hook", secret="s", events=[Event.SUBSCRIBERS_IMPORTED])
    job = run("channel,foreign_id\n" + "".join(f"messenger,p{n}\n" for n in range(5)))

    chunks = _bodies(Event.SUBSCRIBERS_IMPORTED)
    assert [len(chunk["created"]) for chunk in chunks] == [2, 2, 1]
    assert {chunk["batch"] for chunk in chunks} == {f"import-{job.pk}"}


def test_nothing_is_sent_when_an_import_changes_nothing_or_is_a_dry_run(make_subscriber):
    make_subscriber(foreign_id="1", first_name="Ada")
    Endpoint.objects.create(url="https://example.com/hook", secret="s", events=Event.values)
    run("channel,foreign_id,first_name\nmessenger,1,Ada\n")
    run("channel,foreign_id,first_name\nmessenger,2,Bob\n", dry_run=True)

    assert not Delivery.objects.exists()


# --- The search name ------------------------------------------------------------------------------


def test_new_and_renamed_subscribers_get_their_search_name(make_subscriber):
    make_subscriber(foreign_id="1", first_name="Ada", last_name="Lovelace", search_name="ada lovelace")
    run("channel,foreign_id,first_name,last_name\nmessenger,1,Hélène,Müller\nmessenger,2,Ермакова,  Zoë \n")

    names = dict(Subscriber.objects.values_list("foreign_id", "search_name"))
    assert names == {"1": "helene muller", "2": "ermakova zoe"}


def test_a_file_with_one_of_the_names_keeps_the_search_name_whole(make_subscriber):
    make_subscriber(foreign_id="1", first_name="Ada", last_name="Lovelace", search_name="ada lovelace")
    run("channel,foreign_id,first_name\nmessenger,1,Hélène\nmessenger,2,Bob\n")

    names = dict(Subscriber.objects.values_list("foreign_id", "search_name"))
    assert names == {"1": "helene lovelace", "2": "bob"}


# --- Chunks, resume, cancel, one at a time -------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)


def test_chunks_cover_every_row_whatever_their_boundaries(small_chunks, vip):
    for rows in (0, 1, 2, 3, 4, 6, 7):
        Subscriber.objects.all().delete()
        job = run("channel,foreign_id,labels\n" + "".join(f"messenger,p{n},vip\n" for n in range(rows)))
        assert (job.status, job.created_count, job.labels_added) == ("done", rows, rows)
        assert Subscriber.objects.count() == rows


def test_a_worker_killed_after_any_chunk_resumes_from_the_last_committed_one(small_chunks, vip, monkeypatch):
    text = "channel,foreign_id,labels\n" + "".join(f"messenger,p{n},vip\n" for n in range(8)) + "nope,x,\n"
    for crash_after in range(1, 7):
        Subscriber.objects.all().delete()
        job = upload(text)
        actions.start_subscriber_import(job, dry_run=False, background=False)
        for _ in range(crash_after):
            actions._import_chunk(job.pk)
        # The worker dies here; the sweep (or anyone) runs it again from where it got.
        job = actions.run_subscriber_import(job.pk)
        assert (job.status, job.created_count, job.rejected_count, job.labels_added) == ("done", 8, 1, 8)
        assert (
            SubscriberLabel.objects.count() == 8
            and LabelOperationMember.objects.filter(operation=job.add_operation).count() == 8
        )
        assert not SubscriberImportRow.objects.filter(job=job).exists(), "the staged rows are deleted at the end"


def test_a_chunk_that_fails_halfway_leaves_nothing_half_written(small_chunks, vip, monkeypatch):
    job = upload("channel,foreign_id,labels\n" + "".join(f"messenger,p{n},vip\n" for n in range(5)))
    actions.start_subscriber_import(job, dry_run=False, background=False)
    actions._import_chunk(job.pk)  # the first rows checked and staged
    actions._import_chunk(job.pk)  # the last ones: importing comes next

    def fail(*args, **kwargs):
        raise RuntimeError("the worker dies in the middle of a chunk")

    monkeypatch.setattr(actions, "_add_staged_labels", fail)
    with pytest.raises(RuntimeError):
        actions._import_chunk(job.pk)
    assert not Subscriber.objects.exists(), "the subscribers of the failed chunk were rolled back with it"
    monkeypatch.undo()
    assert actions.run_subscriber_import(job.pk).created_count == 5


def test_the_sweep_requeues_an_import_whose_worker_died(small_chunks):
    from datetime import timedelta

    from django.utils import timezone

    job = upload("channel,foreign_id\nmessenger,1\n")
    actions.start_subscriber_import(job, dry_run=False, background=False)
    assert actions.resume_stalled_imports() == [], "it shows signs of life"
    assert actions.resume_stalled_imports(timezone.now() + timedelta(minutes=2)) == [job.pk]


def test_cancelling_stops_after_the_current_chunk_and_keeps_what_was_imported(small_chunks, operator):
    job = upload("channel,foreign_id\n" + "".join(f"messenger,p{n}\n" for n in range(9)))
    actions.start_subscriber_import(job, dry_run=False, by=operator, background=False)
    for _ in range(6):  # four chunks of checking (the last finds the end), then two of importing
        actions._import_chunk(job.pk)
    assert actions.cancel_subscriber_import(job, by=operator)
    job = actions.run_subscriber_import(job.pk)

    assert job.status == "cancelled" and job.cancelled_by == operator
    assert Subscriber.objects.count() == 6
    assert job.summary().startswith("Cancelled: 6 of 9 rows imported. Created 6 subscribers")
    assert not actions.cancel_subscriber_import(job, by=operator), "it had ended"


def test_cancelling_while_checking_says_nothing_was_imported_not_that_nothing_changed(small_chunks, operator):
    job = upload("channel,foreign_id\n" + "".join(f"messenger,p{n}\n" for n in range(9)))
    actions.start_subscriber_import(job, dry_run=False, by=operator, background=False)
    actions._import_chunk(job.pk)  # one chunk of checking
    assert actions.cancel_subscriber_import(job, by=operator)
    job = actions.run_subscriber_import(job.pk)

    assert job.status == "cancelled" and not Subscriber.objects.exists()
    assert job.summary() == "Cancelled while checking, after 3 rows: nothing was imported."


def test_cancelling_an_imports_bulk_change_cancels_the_import(small_chunks, vip, operator):
    job = upload("channel,foreign_id,labels\n" + "".join(f"messenger,p{n},vip\n" for n in range(9)))
    actions.start_subscriber_import(job, dry_run=False, by=operator, background=False)
    while SubscriberImport.objects.get(pk=job.pk).add_operation_id is None:
        actions._import_chunk(job.pk)
    operation = SubscriberImport.objects.get(pk=job.pk).add_operation
    actions.cancel_label_operation(operation, by=operator)
    assert actions.run_subscriber_import(job.pk).status == "cancelled"


def test_an_operator_runs_one_import_at_a_time(operator, label_manager):
    first = upload("channel,foreign_id\nmessenger,1\n")
    second = upload("channel,foreign_id\nmessenger,2\n")
    actions.start_subscriber_import(first, dry_run=True, by=operator, background=False)
    with pytest.raises(actions.ImportBusy) as busy:
        actions.start_subscriber_import(second, dry_run=False, by=operator, background=False)
    assert busy.value.running == first
    actions.start_subscriber_import(second, dry_run=False, by=label_manager, background=False)  # another operator
    actions.run_subscriber_import(first.pk)
    actions.start_subscriber_import(second, dry_run=False, by=operator, background=False) if False else None
    third = upload("channel,foreign_id\nmessenger,3\n")
    actions.start_subscriber_import(third, dry_run=False, by=operator, background=False)


def test_a_dry_run_writes_nothing_and_reports_every_problem(make_subscriber, vip):
    make_subscriber(foreign_id="1", first_name="Ada")
    job = run(
        "channel,foreign_id,first_name,labels\nmessenger,1,Ada L.,vip\nmessenger,2,Bob,vip\nnope,3,,\n", dry_run=True
    )

    assert people() == {"1": ("Ada", "Last1", "", "en-US", "", "")} and not SubscriberLabel.objects.exists()
    assert (job.created_count, job.updated_count, job.labels_added, job.rejected_count) == (1, 1, 2, 1)
    assert job.summary().startswith("Would create 1 subscriber, change 1, leave 0 as they are.")
    assert not LabelOperation.objects.exists()


def test_a_dry_run_then_the_import_run_the_same_file(make_subscriber):
    job = run("channel,foreign_id\nmessenger,1\nnope,2\n", dry_run=True)
    assert SubscriberImportProblem.objects.filter(job=job).count() == 1
    actions.start_subscriber_import(job, dry_run=False, background=False)
    job = actions.run_subscriber_import(job.pk)
    assert (job.dry_run, job.created_count, job.rejected_count) == (False, 1, 1)
    assert SubscriberImportProblem.objects.filter(job=job).count() == 1, "the dry run's report was replaced"


# --- Files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "The file is empty"),
        (b"\xef\xbb\xbf\r\n", "The file is empty"),
        (b"PK\x03\x04rest of a zip", "This is a spreadsheet file, not CSV."),
        (
            "channel,foreign_id,first_name\nmessenger,1,Zoë\n".encode("cp1252"),
            "The file is not UTF-8 text (byte 0xEB on line 2)",
        ),
        (b"\x00\x01binary", "This is not a text file."),
    ],
)
def test_files_that_cannot_be_imported_are_refused_with_the_reason(data, problem):
    with pytest.raises(imports.FileProblem, match=problem.replace("(", r"\(").replace(")", r"\)")):
        upload(data)
    assert not list(imports.import_dir().iterdir()), "the refused file is deleted"


def test_a_header_without_rows_imports_nothing():
    job = run("channel,foreign_id\n")
    assert (job.status, job.rows_read, job.created_count) == ("done", 0, 0)


def test_a_file_over_the_upload_limit_is_refused_while_it_is_stored(settings):
    settings.IMPORT_UPLOAD_LIMIT_MB = 1
    with pytest.raises(imports.FileProblem, match="larger than 1 MB"):
        imports.store_file(io.BytesIO(b"x" * (1024 * 1024 + 1)), "big.csv", limit=imports.upload_limit())
    assert not list(imports.import_dir().iterdir())


def test_a_big_file_is_read_chunk_by_chunk_without_holding_it(small_chunks):
    text = "channel,foreign_id,first_name\n" + "".join(f"web,{n},Name {n}\n" for n in range(50))
    job = run(text)
    assert job.created_count == 50 and job.estimated_rows == 50


def test_the_separator_and_the_byte_order_mark_are_found(vip):
    job = run("\ufeffchannel;foreign_id;labels\nmessenger;1;vip\n")
    assert job.delimiter == ";" and job.header == ["channel", "foreign_id", "labels"] and labels_of("1") == ["vip"]


def test_headers_are_mapped_by_name_and_common_aliases():
    assert imports.guess_mapping(
        ["Channel", "PSID", "First Name", "surname", "Tags", "Favourite colour", "first_name"]
    ) == [
        "channel",
        "foreign_id",
        "first_name",
        "last_name",
        "labels",
        "",
        "",
    ]


def test_a_file_without_a_channel_column_takes_the_channel_chosen_for_every_row(messenger):
    run("psid,first name\n123,Ada\n", channel=messenger)
    assert Subscriber.objects.get().channel == messenger


# --- Formula cells --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "exported"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("'=already", "''=already"),
        ("'plain", "'plain"),
        ("-5", "-5"),
        ("+5.5", "+5.5"),
        ("Ada", "Ada"),
        ("", ""),
    ],
)
def test_formula_cells_are_neutralised_on_export_and_restored_on_import(value, exported):
    assert imports.neutralise(value) == exported
    assert imports.restore(exported) == value


def test_on_postgresql_staging_uses_copy(vip):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    job = run("channel,foreign_id,labels\nmessenger,1,vip\n")
    assert job.created_count == 1
