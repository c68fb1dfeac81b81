"""The subscriber's page: the profile as people read it, and labels that do not contradict their history."""

import pytest
from django.urls import reverse

from hexasubs.templatetags.hexasubs import utc_offset
from subscribers.models import SubscriberLabel

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("reported", "shown"),
    [
        ("-5", "UTC\u221205:00"),
        ("5.5", "UTC+05:30"),
        ("0", "UTC+00:00"),
        ("14", "UTC+14:00"),
        ("Europe/Paris", "Europe/Paris"),
    ],
)
def test_a_time_zone_is_shown_as_an_offset_or_its_name(reported, shown):
    assert utc_offset(reported) == shown


def test_the_profile_shows_the_time_zone_and_the_country_by_name(client, operator, make_subscriber):
    ada = make_subscriber(first_name="Ada", last_name="Lovelace", timezone="-5", country="US")
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk])).text
    assert "<dd>UTC\u221205:00</dd>" in html and "<dd>United States of America</dd>" in html
    french = client.get(reverse("subscribers:detail", args=[ada.pk]), headers={"Accept-Language": "fr"}).text
    assert "<dd>États-Unis d" in french and "<dd>Facebook Messenger</dd>" in french


def test_labels_given_before_the_history_do_not_contradict_it(client, operator, make_subscriber, make_label):
    ada = make_subscriber(first_name="Ada", last_name="Lovelace")
    SubscriberLabel.objects.create(subscriber=ada, label=make_label("VIP"))  # as demo data and old imports did
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk])).text
    assert "automatically" not in html.split('id="label-history"')[0]
    assert "No change recorded yet: the labels above were given before their history was kept." in html
    assert "No label has been added or removed yet." not in html
