import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction

from labels.models import Label
from subscribers.models import Channel, Subscriber
from subscribers.validators import validate_locale, validate_timezone

pytestmark = pytest.mark.django_db


def test_the_database_rejects_a_duplicate_label_name():
    Label.objects.create(title="Active users", name="active_users")
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(title="Other title", name="active_users")


def test_the_database_rejects_a_duplicate_title_ignoring_case():
    Label.objects.create(title="Active users", name="active_users")
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(title="ACTIVE USERS", name="active_users_2")


@pytest.mark.parametrize("name", ["Active", "with space", "tiret-haut", "", "é", "a" * 65])
def test_the_database_rejects_a_malformed_name(name):
    # PostgreSQL refuses the 65-character name for its length before the check constraint sees it.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        Label.objects.create(title="Title", name=name)


def test_the_database_rejects_a_colour_outside_the_palette():
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(title="Title", name="title", color="fuchsia")


def test_the_standard_channels_exist():
    assert dict(Channel.objects.values_list("name", "title")) == {
        "messenger": "Facebook Messenger",
        "web": "Web site",
        "console": "Live chat tester",
    }


def test_a_person_is_one_subscriber_per_channel(make_subscriber, messenger):
    make_subscriber(foreign_id="123")
    make_subscriber(foreign_id="123", channel=Channel.objects.get(name="web"))
    with pytest.raises(IntegrityError), transaction.atomic():
        make_subscriber(foreign_id="123", channel=messenger)


def test_the_database_rejects_an_unknown_gender(make_subscriber):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_subscriber(gender="robot")


def test_a_channel_in_use_cannot_be_deleted(make_subscriber, messenger):
    from django.db.models import ProtectedError

    make_subscriber()
    with pytest.raises(ProtectedError):
        messenger.delete()


def test_subscriber_full_clean_validates_profile_fields(messenger):
    subscriber = Subscriber(
        channel=messenger, foreign_id="1", locale="english", timezone="Mars/Olympus", country="XX", gender="x"
    )
    with pytest.raises(ValidationError) as error:
        subscriber.full_clean()
    assert set(error.value.message_dict) == {"locale", "timezone", "country", "gender"}


@pytest.mark.parametrize("tag", ["en-US", "fr", "zh-Hant-TW", "pt-BR", "es-419"])
def test_it_accepts_bcp47_tags(tag):
    validate_locale(tag)


@pytest.mark.parametrize("tag", ["en_US", "english", "xx-YY", "e", "en-", "123"])
def test_it_rejects_other_locales(tag):
    with pytest.raises(ValidationError, match="BCP 47"):
        validate_locale(tag)


@pytest.mark.parametrize("value", ["1", "-5.5", "+5.75", "0", "14", "Europe/Paris", "America/New_York"])
def test_it_accepts_offsets_and_zone_names(value):
    validate_timezone(value)


@pytest.mark.parametrize("value", ["15", "-13", "Europe/Nowhere", "UTC+1", "abc"])
def test_it_rejects_other_time_zones(value):
    with pytest.raises(ValidationError):
        validate_timezone(value)
