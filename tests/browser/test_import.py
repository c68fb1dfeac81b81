"""Import and export as an operator does them: upload, preview, mapping, dry run, import, progress, rejected rows;
the filtered export and the ticked rows' export."""

import csv
import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from subscribers import actions, imports
from subscribers.models import Subscriber, SubscriberImport, SubscriberLabel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = '<img src=x onerror="document.title=1">'


@pytest.fixture
def importer(operator):
    operator.user_permissions.add(Permission.objects.get(codename="import_subscribers"))
    return operator


@pytest.fixture
def crm_file(tmp_path, make_label):
    """Ten people from a CRM: a column to map by hand (Nom), one to ignore, one bad country, a hostile name."""
    make_label("VIP", name="vip", color="purple")
    rows = [f"messenger,psid-{n},Person {n},Family {n},FR,vip,{n * 3}" for n in range(1, 9)]
    rows.append(f"web,psid-9,{HOSTILE},Hacker,GB,vip,1")
    rows.append("web,psid-10,Bad,Country,XX,,2")
    path = tmp_path / "crm.csv"
    path.write_text("channel,foreign_id,first_name,Nom,country,labels,shoe size\n" + "\n".join(rows) + "\n")
    return path


def job():
    return SubscriberImport.objects.latest("pk")


def test_an_operator_uploads_previews_maps_tries_and_imports_then_downloads_the_rejected_rows(
    page, log_in, importer, crm_file, screenshot, monkeypatch
):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)
    log_in(importer)
    page.goto("/subscribers/")
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import subscribers")).to_be_visible()
    page.get_by_label("CSV file", exact=True).set_input_files(crm_file)
    page.get_by_role("button", name="Upload and preview").click()

    expect(page.get_by_role("heading", name="Columns")).to_be_visible()
    preview = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Row"))
    expect(preview.get_by_text(HOSTILE)).to_be_visible()  # shown as text, never run
    assert page.title() != "1"
    expect(preview.get_by_text("“XX” is not a country code")).to_be_visible()
    expect(page.get_by_label("shoe size")).to_have_value("")  # ignored: not one of ours
    page.get_by_label("Nom").select_option(label="Last name")
    expect(preview.get_by_role("columnheader", name="Last name")).to_be_visible()  # the preview follows
    assert job().mapping[3] == "last_name"
    screenshot("import-preview-1280")

    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("status")).to_have_text("Waiting for a background worker…")
    actions.run_subscriber_import(job().pk)  # what db_worker does
    expect(page.get_by_role("status")).to_contain_text(
        "Dry run over: Would create 9 subscribers, change 0, leave 0 as they are. Labels: 9 would be added, 0 removed. "
        "1 row rejected."
    )
    assert not Subscriber.objects.exists()
    screenshot("import-dry-run-1280")

    page.get_by_role("button", name="Import now").click()
    expect(page.get_by_role("status")).to_have_text("Waiting for a background worker…")
    for _ in range(2):
        actions._import_chunk(job().pk)
    expect(page.get_by_text("Step 1 of 2: 6 of about 10 rows checked.")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Progress")).to_be_visible()
    for _ in range(4):
        actions._import_chunk(job().pk)
    expect(page.get_by_text("Step 2 of 2: 6 of 9 rows imported.")).to_be_visible()
    screenshot("import-progress-1280")
    actions.run_subscriber_import(job().pk)
    expect(page.get_by_role("status")).to_contain_text("Created 9 subscribers, changed 0, left 0 as they were.")
    expect(page.get_by_role("button", name="Cancel the import")).to_be_hidden()
    screenshot("import-done-1280")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the rejected row (CSV)").click()
    rejected = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rejected[0] == ["channel", "foreign_id", "first_name", "Nom", "country", "labels", "shoe size", "error"]
    assert rejected[1][:7] == ["web", "psid-10", "Bad", "Country", "XX", "", "2"]
    assert "country: “XX” is not a country code" in rejected[1][7]

    assert Subscriber.objects.get(foreign_id="psid-9").first_name == HOSTILE
    assert Subscriber.objects.get(foreign_id="psid-3").last_name == "Family 3"
    assert SubscriberLabel.objects.count() == 9
    page.get_by_role("link", name="Subscribers", exact=True).first.click()
    expect(page.get_by_role("link", name=f"{HOSTILE} Hacker", exact=True)).to_be_visible()
    assert page.title() != "1"


def test_an_operator_cancels_a_running_import(page, log_in, importer, crm_file, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)
    log_in(importer)
    page.goto("/subscribers/import/")
    page.get_by_label("CSV file", exact=True).set_input_files(crm_file)
    page.get_by_role("button", name="Upload and preview").click()
    page.get_by_role("button", name="Import", exact=True).click()
    actions._import_chunk(job().pk)
    expect(page.get_by_text("Step 1 of 2: 3 of about 10 rows checked.")).to_be_visible()
    page.get_by_role("button", name="Cancel the import").click()
    expect(page.locator("#import-status").get_by_role("status")).to_contain_text(
        "Cancelled while checking, after 3 rows: nothing was imported."
    )
    assert job().status == "cancelled" and not Subscriber.objects.exists()


def test_the_import_pages_on_a_phone(page, log_in, importer, crm_file, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(importer)
    page.goto("/subscribers/import/")
    page.get_by_label("CSV file", exact=True).set_input_files(crm_file)
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    screenshot("import-preview-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page itself does not scroll sideways"
    page.get_by_role("button", name="Dry run").click()
    actions.run_subscriber_import(job().pk)
    expect(page.get_by_role("button", name="Import now")).to_be_visible()
    screenshot("import-dry-run-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.fixture
def audience(make_subscriber, make_label):
    vip = make_label("VIP", name="vip")
    people = [
        make_subscriber(foreign_id="fr-1", first_name="Adèle", locale="fr-FR"),
        make_subscriber(foreign_id="fr-2", first_name='=HYPERLINK("http://evil")', locale="fr-FR"),
        make_subscriber(foreign_id="en-1", first_name="Ann", locale="en-US"),
    ]
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    return people


def _download(page, button):
    with page.expect_download() as download:
        button.click()
    return Path(download.value.path()).read_text(encoding="utf-8")


def test_an_operator_exports_exactly_the_filtered_subscribers(page, log_in, operator, audience, screenshot):
    log_in(operator)
    page.goto("/subscribers/")
    page.get_by_placeholder("Locale, e.g. en").fill("fr")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#results-count")).to_contain_text("of 2 subscribers")
    page.get_by_role("button", name="Export", exact=True).click()
    dialog = page.get_by_role("dialog", name="Export subscribers")
    expect(dialog.get_by_text("All 2 subscribers matching the table's filter, with their labels.")).to_be_visible()
    dialog.get_by_label("CSV for Excel").check()
    screenshot("export-dialog-1280")
    text = _download(page, dialog.get_by_role("button", name="Download"))
    assert text.startswith("\ufeffchannel;foreign_id;")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert [(row[1], row[2], row[8]) for row in rows[1:]] == [
        ("fr-1", "Adèle", "vip"),
        ("fr-2", '\'=HYPERLINK("http://evil")', ""),
    ]
    expect(dialog).to_be_hidden()


def test_an_operator_exports_the_ticked_rows(page, log_in, operator, audience):
    log_in(operator)
    page.goto("/subscribers/")
    page.get_by_role("checkbox", name="Select Ann").check()
    page.get_by_role("button", name="Export…").click()
    dialog = page.get_by_role("dialog", name="Export subscribers")
    expect(dialog.get_by_text("The 1 ticked subscriber, with their labels.")).to_be_visible()
    text = _download(page, dialog.get_by_role("button", name="Download"))
    assert [row[1] for row in csv.reader(io.StringIO(text))][1:] == ["en-1"]
