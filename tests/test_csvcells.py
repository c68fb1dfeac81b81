"""Formula cells in the CSV files we write: kept as text, and given back exactly by the import."""

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from broadcasts.models import Broadcast, Delivery
from hexasubs.csvcells import neutralise, restore


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+2", "'+1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("-5", "'-5"),
        ("+5.5", "'+5.5"),
        ("'=already", "'=already"),
        ("'plain", "'plain"),
        ("Ada", "Ada"),
        ("", ""),
    ],
)
def test_a_report_prefixes_every_formula_looking_cell_numbers_too(value, written):
    assert neutralise(value, round_trip=False) == written


@pytest.mark.parametrize("value", ["-5", "+5.5", "'=already", "''=twice", "'-5", "=1+1", "Ada", ""])
def test_a_file_that_imports_back_gives_each_cell_back_exactly(value):
    assert restore(neutralise(value)) == value


@pytest.mark.django_db
def test_the_broadcast_recipients_csv_keeps_formulas_and_signed_numbers_as_text(
    client, django_user_model, make_subscriber
):
    user = django_user_model.objects.create_user("bea", password="password")
    user.groups.add(Group.objects.get(name="Broadcasters"))
    broadcast = Broadcast.objects.create(title="Spring sale", text="Hello!")
    hostile = make_subscriber(foreign_id="-5", first_name='=HYPERLINK("x")', last_name="'=quoted")
    Delivery.objects.create(broadcast=broadcast, subscriber=hostile, detail="@detail")
    client.force_login(user)

    response = client.get(reverse("broadcasts:export", args=[broadcast.pk]))

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode().lstrip("\ufeff"))))
    assert rows[1][2:5] == ["'-5", '\'=HYPERLINK("x")', "'=quoted"]
    assert rows[1][7] == "'@detail"
