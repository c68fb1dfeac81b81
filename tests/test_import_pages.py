"""The Import page, an import's settings and preview, its progress and report, and the rejected rows' download."""

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation

from subscribers import actions
from subscribers.models import Subscriber, SubscriberImport
from tests.test_i18n import _english_left

pytestmark = pytest.mark.django_db

IMPORT = "/subscribers/import/"


@pytest.fixture
def importer(operator):
    operator.user_permissions.add(Permission.objects.get(codename="import_subscribers"))
    return operator


@pytest.fixture
def signed_in(importer):
    client = Client()
    client.force_login(importer)
    return client


def upload(client, text, name="people.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


def settings_data(job, **changes):
    data = {
        "delimiter": job.delimiter,
        "mode": job.mode,
        "replace_labels": "0",
        "create_labels": "0",
        "channel": "",
        **{f"column_{index}": field for index, field in enumerate(job.mapping)},
    }
    data.update(changes)
    return data


def test_operators_may_not_import_by_default(operator):
    client = Client()
    client.force_login(operator)
    assert client.get(IMPORT).status_code == 403
    assert b"Import" not in client.get("/subscribers/").content.split(b"<main")[1].split(b"subscriber-results")[0]


def test_the_subscribers_page_links_to_the_import_page_for_those_who_may_import(signed_in):
    assert b'href="/subscribers/import/"' in signed_in.get("/subscribers/").content


def test_an_upload_leads_to_the_preview_of_its_first_rows_as_they_will_be_read(signed_in):
    response = upload(
        signed_in, "Channel,PSID,First Name,Favourite colour\nmessenger,1,<b>Ada</b>,blue\nweb,2,=cmd(),red\n"
    )
    job = SubscriberImport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/subscribers/import/{job.pk}/"
    assert (job.header, job.mapping, job.estimated_rows) == (
        ["Channel", "PSID", "First Name", "Favourite colour"],
        ["channel", "foreign_id", "first_name", ""],
        2,
    )

    html = signed_in.get(response["Location"]).content.decode()
    assert "&lt;b&gt;Ada&lt;/b&gt;" in html and "<b>Ada</b>" not in html, "hostile names are shown as text"
    assert "=cmd()" in html
    assert "Ignore this column" in html and "Dry run" in html


def test_the_preview_marks_each_bad_cell_with_its_reason(signed_in):
    upload(signed_in, "channel,foreign_id,country\nmessenger,1,XX\n")
    html = signed_in.get(SubscriberImport.objects.get().get_absolute_url()).content.decode()
    assert "“XX” is not a country code" in html


def test_a_new_mapping_is_saved_and_previewed(signed_in):
    upload(signed_in, "a,b,c\nmessenger,1,Ada\n")
    job = SubscriberImport.objects.get()
    response = signed_in.post(
        job.get_absolute_url(), settings_data(job, column_0="channel", column_1="foreign_id", column_2="last_name")
    )
    job.refresh_from_db()
    assert response.status_code == 200 and job.mapping == ["channel", "foreign_id", "last_name"]
    assert ">Last name<" in response.content.decode()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"column_1": ""}, "Choose the column that holds the foreign id"),
        ({"column_0": ""}, "Choose the column that holds the channel, or one channel for every row."),
        ({"column_2": "foreign_id"}, "Another column fills “Foreign id” already"),
        ({"mode": "labels_add"}, "Adding or removing labels needs the column that holds the labels."),
    ],
)
def test_a_mapping_that_cannot_work_is_refused(signed_in, changes, error):
    upload(signed_in, "channel,foreign_id,name\nmessenger,1,Ada\n")
    job = SubscriberImport.objects.get()
    response = signed_in.post(job.get_absolute_url(), settings_data(job, **changes, action="import"))
    assert response.status_code == 422 and error in response.content.decode()
    assert SubscriberImport.objects.get().status == "draft"


def test_another_separator_reads_the_columns_again(signed_in):
    upload(signed_in, "channel;foreign_id;first,name\nmessenger;1;Ada\n")
    job = SubscriberImport.objects.get()
    assert job.header == ["channel", "foreign_id", "first,name"]
    signed_in.post(job.get_absolute_url(), settings_data(job, delimiter=","))
    assert SubscriberImport.objects.get().header == ["channel;foreign_id;first", "name"]


def test_only_label_managers_may_have_unknown_labels_created(signed_in, importer):
    upload(signed_in, "channel,foreign_id,labels\nmessenger,1,Gold\n")
    job = SubscriberImport.objects.get()
    response = signed_in.post(job.get_absolute_url(), settings_data(job, create_labels="1"))
    assert "You may not create labels" in response.content.decode()
    assert not SubscriberImport.objects.get().create_labels


def test_a_dry_run_is_queued_then_reported_with_import_now(signed_in, django_capture_on_commit_callbacks):
    upload(signed_in, "channel,foreign_id\nmessenger,1\nnope,2\n")
    job = SubscriberImport.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = signed_in.post(job.get_absolute_url(), settings_data(job, action="dry_run"))
    assert response.status_code == 302 and len(queued) == 1
    waiting = signed_in.get(job.get_absolute_url()).content.decode()
    assert "Waiting for a background worker…" in waiting and "Cancel the import" in waiting

    actions.run_subscriber_import(job.pk)  # what the worker does
    html = signed_in.get(job.get_absolute_url()).content.decode()
    assert "Dry run over: Would create 1 subscriber, change 0, leave 0 as they are. 1 row rejected." in html
    assert "Import now" in html and "Download the rejected row (CSV)" in html
    assert not Subscriber.objects.exists()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        signed_in.post(job.get_absolute_url(), {"action": "import"})
    assert len(queued) == 1
    actions.run_subscriber_import(job.pk)
    assert Subscriber.objects.get().foreign_id == "1"


def test_progress_is_polled_and_says_how_far_it_got(signed_in, importer):
    upload(signed_in, "channel,foreign_id\n" + "".join(f"web,{n}\n" for n in range(10)))
    job = SubscriberImport.objects.get()
    actions.start_subscriber_import(job, dry_run=False, by=importer, background=False)
    actions._import_chunk(job.pk)
    html = signed_in.get(job.get_absolute_url(), headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in html and "Step 2 of 2: 0 of 10 rows imported." in html


def test_an_operator_cancels_an_import(signed_in, importer):
    upload(signed_in, "channel,foreign_id\nweb,1\n")
    job = SubscriberImport.objects.get()
    actions.start_subscriber_import(job, dry_run=False, by=importer, background=False)
    response = signed_in.post(f"/subscribers/import/{job.pk}/cancel/", follow=True)
    assert "cancelled: what it imported so far stays." in response.content.decode()
    assert SubscriberImport.objects.get().status == "cancelled"


def test_a_second_import_while_one_runs_is_refused_with_a_message(signed_in, importer):
    upload(signed_in, "channel,foreign_id\nweb,1\n")
    upload(signed_in, "channel,foreign_id\nweb,2\n")
    first, second = SubscriberImport.objects.order_by("pk")
    actions.start_subscriber_import(first, dry_run=False, by=importer, background=False)
    response = signed_in.post(second.get_absolute_url(), settings_data(second, action="import"), follow=True)
    assert f"You are already running {first}" in response.content.decode()
    assert SubscriberImport.objects.get(pk=second.pk).status == "draft"


def test_the_rejected_rows_download_is_the_original_rows_with_a_reason(signed_in):
    upload(signed_in, "\ufeffchannel;foreign_id;first_name\nnope;1;=Ada\nweb;2;Bob\n")
    job = SubscriberImport.objects.get()
    actions.start_subscriber_import(job, dry_run=False, background=False)
    actions.run_subscriber_import(job.pk)
    response = signed_in.get(f"/subscribers/import/{job.pk}/rejected.csv")
    assert response["Content-Disposition"] == 'attachment; filename="people-rejected.csv"'
    assert b"".join(response.streaming_content).decode() == (
        "\ufeffchannel;foreign_id;first_name;error\r\n"
        "nope;1;'=Ada;channel: There is no channel named “nope” (channels: console, messenger, web).\r\n"
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "The file is empty"),
        ("channel\nZoë\n".encode("latin-1"), "The file is not UTF-8 text"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_on_the_page(signed_in, settings, data, problem):
    response = upload(signed_in, data)
    assert response.status_code == 422 and problem in response.content.decode()
    assert not SubscriberImport.objects.exists()
    assert list(settings.IMPORT_DIR.glob("*")) == [], "a refused upload leaves no file behind"


def test_an_upload_over_the_limit_is_refused(signed_in, settings):
    settings.IMPORT_UPLOAD_LIMIT_MB = 1
    response = upload(signed_in, b"channel,foreign_id\n" + b"web,1\n" * 200_000)
    assert response.status_code == 413 and "larger than 1 MB" in response.content.decode()
    assert not SubscriberImport.objects.exists()
    assert list(settings.IMPORT_DIR.glob("*")) == []


def test_an_upload_is_streamed_to_disk_and_never_held_in_memory(signed_in, settings, monkeypatch):
    from django.core.files.uploadhandler import MemoryFileUploadHandler

    def refuse(*args, **kwargs):
        raise AssertionError("the upload went to memory")

    monkeypatch.setattr(MemoryFileUploadHandler, "receive_data_chunk", refuse)
    upload(signed_in, "channel,foreign_id\n" + "web,1\n" * 1000)
    job = SubscriberImport.objects.get()
    assert (settings.IMPORT_DIR / job.file_name).stat().st_size == job.size


def test_the_import_pages_and_the_export_dialog_speak_french(signed_in, importer, make_label):
    make_label("Clients fidèles", name="fideles")
    for _ in range(2):  # a file from a French CRM, its columns mapped by hand
        upload(signed_in, "canal,identifiant,étiquettes\nweb,1,fideles\nfax,2,Nouveau\n")
    SubscriberImport.objects.update(mapping=["channel", "foreign_id", "labels"])
    draft, done = SubscriberImport.objects.order_by("pk")
    with translation.override("fr"):
        actions.start_subscriber_import(done, dry_run=True, by=importer, language="fr", background=False)
        actions.run_subscriber_import(done.pk)
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    pages = {
        url: signed_in.get(url, headers=french)
        for url in (IMPORT, draft.get_absolute_url(), done.get_absolute_url(), "/subscribers/export/?filters=")
    }
    assert {url: page.status_code for url, page in pages.items()} == dict.fromkeys(pages, 200)
    assert {url: _english_left(page.text) for url, page in pages.items()} == {url: [] for url in pages}
    assert (
        "Aucun canal nommé « fax »" in pages[done.get_absolute_url()].text
        or "fax" in pages[done.get_absolute_url()].text
    )
    # Each count takes its own plural: one subscriber would be created, none changed, none left.
    assert "1 abonné serait créé, 0 serait modifié, 0 resterait tel quel." in pages[done.get_absolute_url()].text


def test_an_upload_without_the_csrf_token_is_refused(importer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(importer)
    response = upload(client, "channel,foreign_id\nweb,1\n")
    assert response.status_code == 403 and not SubscriberImport.objects.exists()
