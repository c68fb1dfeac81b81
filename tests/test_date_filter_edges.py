"""Dates at the calendar's edges give a valid result or a clear message, never a 500 (issue 15, item 6)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

EDGES = [
    {"updated_before": "9999-12-31"},
    {"created_before": "9999-12-31"},
    {"updated_after": "9999-12-31"},
    {"created_after": "0001-01-01"},
    {"created_after": "0001-01-01", "created_before": "9999-12-31"},
]


@pytest.fixture
def people(make_subscriber):
    return [make_subscriber(), make_subscriber()]


@pytest.mark.parametrize("query", EDGES)
@pytest.mark.parametrize("time_zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_table_accepts_the_first_and_last_day_of_the_calendar(client, operator, people, settings, query, time_zone):
    settings.TIME_ZONE = time_zone
    client.force_login(operator)
    assert client.get(reverse("subscribers:list"), query).status_code == 200


def test_until_the_last_day_of_the_calendar_is_everyone(client, operator, people):
    client.force_login(operator)
    html = client.get(reverse("subscribers:list"), {"updated_before": "9999-12-31"}).text
    assert all(person.first_name in html for person in people)


def test_from_the_last_day_of_the_calendar_is_nobody(client, operator, people):
    client.force_login(operator)
    html = client.get(reverse("subscribers:list"), {"updated_after": "9999-12-31"}).text
    assert not any(person.first_name in html for person in people)


def test_a_year_past_the_calendar_is_a_clear_message(client, operator, people):
    client.force_login(operator)
    response = client.get(reverse("subscribers:list"), {"created_before": "10000-01-01"})
    assert response.status_code == 200
    assert "Enter a valid date" in response.text


def test_the_bulk_dialog_confirms_a_change_for_the_last_day_of_the_calendar(client, label_manager, people, make_label):
    client.force_login(label_manager)
    vip = make_label("VIP")
    response = client.post(
        reverse("subscribers:bulk_labels"),
        {"kind": "add", "labels": [vip.pk], "filters": "updated_before=9999-12-31", "all_matching": "1"},
    )
    assert response.status_code == 200
