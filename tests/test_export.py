"""Exports: exactly what the Subscribers page's filter or its ticked rows select, streamed, with the labels."""

import csv
import io

import pytest
from django.test import Client

from subscribers import exports
from subscribers.models import Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(operator):
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def people(make_subscriber, make_label):
    vip, news = make_label("VIP", name="vip"), make_label("Newsletter", name="newsletter")
    ada = make_subscriber(foreign_id="1", first_name="Ada", locale="fr-FR", country="FR")
    bob = make_subscriber(foreign_id="2", first_name='=HYPERLINK("http://evil","x")', locale="en-US")
    zoe = make_subscriber(foreign_id="3", first_name="Zoë", locale="fr")
    SubscriberLabel.objects.create(subscriber=ada, label=vip)
    SubscriberLabel.objects.create(subscriber=ada, label=news)
    SubscriberLabel.objects.create(subscriber=zoe, label=vip)
    return ada, bob, zoe


def rows(response, delimiter=","):
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_the_download_has_every_column_and_the_labels(signed_in, people):
    response = signed_in.get("/subscribers/export/download/")
    assert response["Content-Type"] == "text/csv; charset=utf-8" and "attachment" in response["Content-Disposition"]
    table = rows(response)
    assert table[0] == [
        "channel",
        "foreign_id",
        "first_name",
        "last_name",
        "gender",
        "locale",
        "timezone",
        "country",
        "labels",
        "created_at",
        "updated_at",
        "last_seen_at",
    ]
    assert [row[1] for row in table[1:]] == ["1", "2", "3"]
    assert table[1][8] == "newsletter|vip" and table[1][7] == "FR"
    assert table[2][2] == '\'=HYPERLINK("http://evil","x")', "formula cells stay text in a spreadsheet"


def test_it_exports_exactly_the_filter(signed_in, people):
    response = signed_in.get("/subscribers/export/download/", {"filters": "locale=fr&label=vip", "all_matching": "1"})
    assert [row[1] for row in rows(response)[1:]] == ["1", "3"]


def test_it_exports_exactly_the_ticked_rows_within_the_filter(signed_in, people):
    _ada, bob, zoe = people
    response = signed_in.get("/subscribers/export/download/", {"filters": "locale=fr", "ids": [bob.pk, zoe.pk]})
    assert [row[1] for row in rows(response)[1:]] == ["3"]


def test_the_excel_flavour_has_semicolons_and_a_byte_order_mark(signed_in, people):
    response = signed_in.get("/subscribers/export/download/", {"format": "excel"})
    content = b"".join(response.streaming_content)
    assert content.startswith("\ufeffchannel;foreign_id;".encode())


def test_a_bad_filter_is_explained_not_exported(signed_in, people):
    response = signed_in.get("/subscribers/export/download/", {"filters": "label=nope"})
    assert response.status_code == 422 and "no longer applies" in response.content.decode()


def test_the_dialog_says_what_is_exported(signed_in, people):
    html = signed_in.get(
        "/subscribers/export/", {"filters": "locale=fr"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "All 2 subscribers matching the table's filter, with their labels." in html
    assert 'action="/subscribers/export/download/"' in html
    ticked = signed_in.get("/subscribers/export/", {"ids": [people[0].pk]}).content.decode()
    assert "The 1 ticked subscriber, with their labels." in ticked


def test_the_subscribers_page_offers_export_with_its_filter(signed_in, people):
    html = signed_in.get("/subscribers/", {"locale": "fr"}).content.decode()
    assert 'href="/subscribers/export/?filters=locale%3Dfr&amp;next=' in html
    assert 'id="bulk-export"' in html


def test_the_export_streams_in_batches_with_a_query_per_batch(people, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(exports, "BATCH", 2)
    chunks = exports.csv_chunks(Subscriber.objects.all())
    with django_assert_num_queries(0):
        header = next(chunks)  # the header comes before any query
    assert header.startswith("channel,")
    with django_assert_num_queries(4):  # two batches (label ids joined in SQL), the label names once, the empty batch
        body = "".join(chunks)
    assert body.count("\r\n") == 3


def test_every_text_column_is_neutralised_and_plain_numbers_are_not(make_subscriber):
    make_subscriber(foreign_id="@id", first_name="Ada", last_name="+33 6", locale="fr", timezone="-5")
    make_subscriber(foreign_id="2", first_name="'=quoted", last_name="Lovelace", timezone="Europe/Paris")

    table = list(csv.reader(io.StringIO("".join(exports.csv_chunks(Subscriber.objects.all())))))

    assert [(row[1], row[2], row[3], row[6]) for row in table[1:]] == [
        ("'@id", "Ada", "'+33 6", "-5"),
        ("2", "''=quoted", "Lovelace", "Europe/Paris"),
    ]


def test_a_label_given_during_an_export_is_named_in_the_later_rows(people, monkeypatch, make_label):
    monkeypatch.setattr(exports, "BATCH", 1)
    rows = exports.export_rows(Subscriber.objects.all())
    next(rows), next(rows)  # the header and the first subscriber: the names of the labels then are read
    SubscriberLabel.objects.create(subscriber=people[2], label=make_label("Late", name="late"))

    assert [row[8] for row in rows] == ["", "late|vip"]
