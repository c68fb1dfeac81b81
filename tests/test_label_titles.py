"""Look-alike titles and one description limit, on every path: issue 15, items 8 and 9."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from labels.forms import LabelForm
from labels.models import DESCRIPTION_MAX_LENGTH, Label
from labels.names import normalise_title

pytestmark = pytest.mark.django_db

ZERO_WIDTH_SPACE, RIGHT_TO_LEFT_OVERRIDE, RIGHT_TO_LEFT_MARK = "\u200b", "\u202e", "\u200f"
LOOK_ALIKES = [
    f"V{ZERO_WIDTH_SPACE}IP",
    f"{RIGHT_TO_LEFT_MARK}VIP",
    f"VIP{RIGHT_TO_LEFT_OVERRIDE}",
    "VIP\u2060",
    "\ufeffVIP",
    "V\u00adIP",
    " VIP ",
    "VIP\t",
]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (f"V{ZERO_WIDTH_SPACE}IP", "VIP"),
        ("  Big \t  spenders\n", "Big spenders"),
        ("Cafe\u0301", "Café"),  # NFC: the combining accent becomes one character
        (f"Hot{RIGHT_TO_LEFT_OVERRIDE} leads{RIGHT_TO_LEFT_MARK}", "Hot leads"),
        ("❤️ Fans", "❤️ Fans"),  # the variation selector of an emoji stays
        ("👩\u200d💻 Developers", "👩\u200d💻 Developers"),  # so does the joiner inside an emoji sequence
        ("V\u200dIP", "VIP"),  # but not between letters
        ("Клиенты", "Клиенты"),
    ],
)
def test_titles_are_normalised(typed, stored):
    assert normalise_title(typed) == stored
    assert normalise_title(stored) == stored


def test_the_model_stores_the_normalised_title():
    label = Label.objects.create(title=f"V{ZERO_WIDTH_SPACE}IP", name="vip")
    label.refresh_from_db()
    assert label.title == "VIP"


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_the_dialog_refuses_a_title_that_only_looks_different(client, label_manager, make_label, look_alike):
    make_label("VIP")
    client.force_login(label_manager)
    response = client.post(reverse("labels:add"), {"title": look_alike, "name": "", "auto_name": ""})
    assert "A label with this title already exists." in response.text
    assert Label.objects.count() == 1


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_the_form_and_the_model_refuse_look_alikes(make_label, look_alike):
    make_label("VIP")
    form = LabelForm(data={"title": look_alike, "name": "vip_2"})
    assert not form.is_valid()
    assert form.errors["title"] == ["A label with this title already exists."]
    with pytest.raises(ValidationError) as refused:
        Label(title=look_alike, name="vip_3").full_clean()
    assert "title" in str(refused.value) or "already exists" in str(refused.value)


def test_the_admin_refuses_a_look_alike(client, admin_user, make_label):
    make_label("VIP")
    client.force_login(admin_user)
    response = client.post(reverse("admin:labels_label_add"), {"title": f"V{ZERO_WIDTH_SPACE}IP", "name": "other"})
    assert response.status_code == 200
    assert "A label with this title already exists." in response.text


def test_the_api_refuses_a_look_alike_and_stores_normalised_titles(api_client, make_label):
    make_label("VIP")

    def create(body):
        return api_client.post("/api/v1/labels", json.dumps(body), content_type="application/json")

    refused = create({"title": f"{RIGHT_TO_LEFT_MARK}VIP"})
    assert refused.status_code == 422
    assert "A label with this title already exists." in refused.text
    created = create({"title": f"Big{ZERO_WIDTH_SPACE}  spenders"})
    assert created.status_code == 201
    assert created.json()["title"] == "Big spenders"


@pytest.mark.parametrize("title", ["\u200b\u200f", "   ", "\u3164"])
def test_a_title_with_nothing_visible_is_refused(title):
    form = LabelForm(data={"title": title, "name": "x"})
    assert not form.is_valid()
    assert "title" in form.errors


@pytest.mark.parametrize(
    "title", [f"V{ZERO_WIDTH_SPACE}IP", f"VIP{RIGHT_TO_LEFT_OVERRIDE}", " VIP", "VIP ", "V  IP", ""]
)
def test_the_database_refuses_titles_that_were_not_normalised(make_label, title):
    label = make_label("Something")
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.filter(pk=label.pk).update(title=title)


def test_the_database_accepts_emoji_sequences(make_label):
    label = make_label("Something")
    Label.objects.filter(pk=label.pk).update(title="👩\u200d💻 Developers ❤️")


# Description: one limit (item 9) ------------------------------------------------------------------------

TOO_LONG = "x" * (DESCRIPTION_MAX_LENGTH + 1)


def test_the_limit_is_the_apis():
    assert DESCRIPTION_MAX_LENGTH == 2000


def test_the_dialog_refuses_a_description_over_the_limit(client, label_manager):
    client.force_login(label_manager)
    response = client.post(reverse("labels:add"), {"title": "VIP", "description": TOO_LONG, "auto_name": ""})
    assert "Ensure this value has at most 2000 characters" in response.text
    assert not Label.objects.exists()


def test_the_admin_refuses_a_description_over_the_limit(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("admin:labels_label_add"), {"title": "VIP", "name": "vip", "description": TOO_LONG})
    assert response.status_code == 200
    assert "Ensure this value has at most 2000 characters" in response.text
    assert not Label.objects.exists()


def test_the_api_refuses_a_description_over_the_limit(api_client):
    response = api_client.post(
        "/api/v1/labels", json.dumps({"title": "VIP", "description": TOO_LONG}), content_type="application/json"
    )
    assert response.status_code == 422


def test_the_model_and_the_database_refuse_a_description_over_the_limit(make_label):
    with pytest.raises(ValidationError):
        Label(title="VIP", name="vip", description=TOO_LONG).full_clean()
    label = make_label("Other", description="x" * DESCRIPTION_MAX_LENGTH)
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.filter(pk=label.pk).update(description=TOO_LONG)
