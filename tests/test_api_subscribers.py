import json
from datetime import timedelta

import pytest
from django.utils import timezone

from subscribers.models import LabelChange, Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db

URL = "/api/v1/channels/messenger/subscribers/psid-42"
PROFILE = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "gender": "female",
    "locale": "en-GB",
    "timezone": "Europe/London",
    "country": "GB",
    "avatar_url": "https://example.com/ada.png",
}
LONG_AGO = timezone.now() - timedelta(days=30)


def _put(client, body, url=URL):
    return client.put(url, json.dumps(body), content_type="application/json")


def test_first_contact_creates_the_subscriber(api_client, messenger):
    response = _put(api_client, PROFILE)

    assert response.status_code == 201
    subscriber = Subscriber.objects.get()
    assert (subscriber.channel, subscriber.foreign_id) == (messenger, "psid-42")
    assert subscriber.created_at == subscriber.updated_at == subscriber.last_seen_at
    body = response.json()
    assert {key: body[key] for key in PROFILE} == PROFILE
    assert body["labels"] == []


def test_the_same_profile_twice_keeps_one_row_and_updated_at(api_client):
    _put(api_client, PROFILE)
    first = Subscriber.objects.get()

    response = _put(api_client, PROFILE)

    assert response.status_code == 200
    assert Subscriber.objects.count() == 1
    again = Subscriber.objects.get()
    assert again.updated_at == first.updated_at
    assert again.last_seen_at > first.last_seen_at


def test_a_changed_field_moves_updated_at_and_keeps_the_fields_not_sent(api_client, make_subscriber):
    make_subscriber(foreign_id="psid-42", first_name="Ada", last_name="Byron", updated_at=LONG_AGO)

    response = _put(api_client, {"last_name": "Lovelace"})

    assert response.status_code == 200
    subscriber = Subscriber.objects.get()
    assert (subscriber.first_name, subscriber.last_name) == ("Ada", "Lovelace")
    assert subscriber.updated_at > LONG_AGO


def test_it_accepts_messenger_locales_and_numeric_offsets(api_client):
    response = _put(api_client, {"locale": "fr_CA", "timezone": -5.5})

    assert response.status_code == 201
    subscriber = Subscriber.objects.get()
    assert (subscriber.locale, subscriber.timezone) == ("fr-CA", "-5.5")


@pytest.mark.parametrize("value", [True, False, "5\n", "\u0665", "\uff11", None])
def test_a_time_zone_that_is_no_offset_or_zone_gets_422(api_client, value):
    """JSON's true is no time zone (not 1); an offset is ASCII digits and nothing after them."""
    response = _put(api_client, {"timezone": value})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] in ("timezone", "str", "float")
    assert not Subscriber.objects.exists()


def test_minus_zero_hours_is_stored_as_zero(api_client):
    _put(api_client, {"timezone": -0.0})
    assert Subscriber.objects.get().timezone == "0"


def test_a_long_name_in_a_script_that_transliterates_long_is_stored_and_found(api_client):
    """Folded for the search, 150 Chinese characters or 52 emoji run past the search column: it keeps the
    beginning, and the name itself is stored whole."""
    name = "中" * 150
    assert _put(api_client, {"first_name": name, "last_name": "😀" * 52}).status_code == 201
    subscriber = Subscriber.objects.get()
    assert subscriber.first_name == name
    assert len(subscriber.search_name) <= 511 and subscriber.search_name.startswith("zhongzhong")
    assert [item["foreign_id"] for item in api_client.get("/api/v1/subscribers", {"q": "zhong"}).json()["items"]] == [
        "psid-42"
    ]


def test_markup_in_names_is_stored_as_text(api_client):
    _put(api_client, {"first_name": "<script>alert(1)</script>"})
    assert Subscriber.objects.get().first_name == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("locale", "english!", "“english!” is not a BCP 47 language tag such as en-US or fr."),
        ("gender", "robot", "Value 'robot' is not a valid choice."),
        ("timezone", "Mars/Olympus", "“Mars/Olympus” is neither a UTC offset in hours"),
        ("country", "XX", "Value 'XX' is not a valid choice."),
        ("avatar_url", "not a url", "Enter a valid URL."),
        ("first_name", "x" * 256, "String should have at most 255 characters"),
        ("first_name", 12, "Input should be a valid string"),
        ("nickname", "Ada", "Extra inputs are not permitted"),
    ],
)
def test_bad_profile_fields_get_422_per_field_and_store_nothing(api_client, field, value, message):
    response = _put(api_client, {**PROFILE, field: value})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field
    assert error["msg"].startswith(message)
    assert not Subscriber.objects.exists()


def test_several_bad_fields_are_all_reported(api_client):
    response = _put(api_client, {"locale": "??", "gender": "robot"})
    assert sorted(error["loc"][-1] for error in response.json()["detail"]) == ["gender", "locale"]


def test_a_body_that_is_not_json_gets_422(api_client):
    response = api_client.put(URL, "{not json", content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "The request body is not valid JSON."


@pytest.mark.parametrize("method", ["delete", "patch"])
def test_a_method_the_address_does_not_take_gets_405_in_json(api_client, method):
    response = getattr(api_client, method)(URL)
    assert response.status_code == 405 and response["Allow"]
    assert response.json() == {"detail": f"This address does not take {method.upper()}: use {response['Allow']}."}


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/channels/messenger/subscribers/a/b"])
def test_an_unknown_api_address_gets_404_in_json_not_the_login_page(client, path):
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 404
    assert response.json() == {"detail": "Introuvable."}


def test_a_too_long_foreign_id_gets_422(api_client):
    response = _put(api_client, PROFILE, url=f"/api/v1/channels/messenger/subscribers/{'x' * 256}")
    assert response.status_code == 422
    assert not Subscriber.objects.exists()


def test_get_returns_the_profile_and_labels(api_client, make_subscriber, make_label):
    subscriber = make_subscriber(foreign_id="psid-42", first_name="Ada")
    subscriber.labels.add(make_label("VIP customer", name="vip"), make_label("Active"))

    response = api_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["first_name"] == "Ada"
    assert body["channel"] == "messenger"
    assert body["labels"] == [{"name": "active", "title": "Active"}, {"name": "vip", "title": "VIP customer"}]


def test_get_an_unknown_subscriber_gets_404(api_client, messenger):
    assert api_client.get(URL).status_code == 404


def test_post_labels_adds_and_removes_by_name(api_client, make_subscriber, make_label):
    subscriber = make_subscriber(foreign_id="psid-42", updated_at=LONG_AGO)
    vip, active, churned = make_label("VIP", name="vip"), make_label("Active"), make_label("Churned")
    subscriber.labels.add(churned)

    response = api_client.post(f"{URL}/labels", {"add": ["vip", "active"], "remove": ["churned"]}, "application/json")

    assert response.status_code == 200
    assert [label["name"] for label in response.json()["labels"]] == ["active", "vip"]
    assert set(subscriber.labels.all()) == {vip, active}
    subscriber.refresh_from_db()
    assert subscriber.updated_at == LONG_AGO, "updated_at is the profile's date: label changes leave it"


def test_post_labels_with_unknown_names_gets_400_and_changes_nothing(api_client, make_subscriber, make_label):
    subscriber = make_subscriber(foreign_id="psid-42")
    make_label("VIP", name="vip")

    response = api_client.post(f"{URL}/labels", {"add": ["vip", "gold", "<b>x</b>"], "remove": []}, "application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": "No labels are called <b>x</b>, gold.", "unknown": ["<b>x</b>", "gold"]}
    assert not SubscriberLabel.objects.filter(subscriber=subscriber).exists()


def test_post_labels_for_an_unknown_subscriber_gets_404(api_client, messenger):
    assert api_client.post(f"{URL}/labels", {"add": []}, "application/json").status_code == 404


def test_a_label_both_added_and_removed_gets_422_and_changes_nothing(api_client, make_subscriber, make_label):
    subscriber = make_subscriber(foreign_id="psid-42")
    make_label("Pro", name="pro")
    free = make_label("Free", name="free")
    subscriber.labels.add(free)

    response = api_client.post(f"{URL}/labels", {"add": ["pro"], "remove": ["pro", "free"]}, "application/json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "pro is both in add and in remove: ask for one or the other."
    assert list(subscriber.labels.all()) == [free]
    assert not LabelChange.objects.exists()


def test_post_labels_goes_through_the_label_actions(api_client, make_subscriber, make_label, monkeypatch):
    from subscribers import actions

    calls = []
    monkeypatch.setattr(actions, "change_labels", lambda subscriber, **kwargs: calls.append(kwargs) or (0, 0))
    make_subscriber(foreign_id="psid-42")
    vip = make_label("VIP", name="vip")

    api_client.post(f"{URL}/labels", {"add": ["vip"]}, "application/json")

    assert calls == [{"add": [vip], "remove": [], "source": "api"}]


def test_label_changes_made_through_the_api_are_in_the_history(api_client, make_subscriber, make_label):
    subscriber = make_subscriber(foreign_id="psid-42")
    make_label("VIP", name="vip")
    subscriber.labels.add(make_label("Churned", name="churned"))

    api_client.post(f"{URL}/labels", {"add": ["vip"], "remove": ["churned"]}, "application/json")

    history = LabelChange.objects.filter(subscriber=subscriber).order_by("action", "label_name")
    assert [(change.label_name, change.action, change.source, change.changed_by) for change in history] == [
        ("vip", "added", "api", None),
        ("churned", "removed", "api", None),
    ]


def test_a_repeat_visit_runs_a_fixed_number_of_queries(api_client, make_subscriber, django_assert_num_queries):
    make_subscriber(foreign_id="psid-42", **{key: PROFILE[key] for key in ("first_name", "last_name", "locale")})
    _put(api_client, PROFILE)  # fills the other fields and sets the key's last_used_at
    with django_assert_num_queries(1):
        # The key and the channel are in the process's cache (api.key_cache) since the first call.
        # 1. UPDATE last_seen_at … RETURNING the stored profile and labels: the same profile, nothing else to do
        response = _put(api_client, PROFILE)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "loc"),
    [
        ("put", URL, '{"first_name": "a\\u0000b"}', ["body", "profile", "first_name"]),
        ("put", "/api/v1/channels/messenger/subscribers/a%00b", "{}", ["path"]),
        ("get", "/api/v1/subscribers?q=a%00", None, ["query", "q"]),
        ("post", f"{URL}/labels", '{"add": ["vip\\u0000"]}', ["body", "change", "add", 0]),
        ("post", "/api/v1/labels", '{"title": "VIP\\u0000"}', ["body", "data", "title"]),
    ],
)
def test_null_characters_get_422_not_a_database_error(api_client, make_subscriber, method, url, body, loc):
    make_subscriber(foreign_id="psid-42")
    response = getattr(api_client, method)(url, body, content_type="application/json") if body else api_client.get(url)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert error["msg"] == "Null characters are not allowed."
