"""POST /api/v1/subscribers/batch: up to 500 people of one channel per request, set-based."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.actions import create_api_key
from subscribers.models import Channel, Subscriber
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscribers/batch"
LONG_AGO = timezone.now() - timedelta(days=30)


def _post(client, people, channel="messenger"):
    return client.post(URL, json.dumps({"channel": channel, "subscribers": people}), content_type="application/json")


def test_it_creates_updates_and_leaves_people_as_they_are(api_client, make_subscriber, messenger):
    same = make_subscriber(foreign_id="same", first_name="Ada", last_name="Lovelace", updated_at=LONG_AGO)
    moved = make_subscriber(foreign_id="moved", first_name="Alan", locale="en-GB", updated_at=LONG_AGO)

    response = _post(
        api_client,
        [
            {"foreign_id": "new", "first_name": "Grace", "last_name": "Hopper", "locale": "en_US"},
            {"foreign_id": "same", "first_name": "Ada", "last_name": "Lovelace"},
            {"foreign_id": "moved", "first_name": "Alan", "locale": "fr-FR"},
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("created", "updated", "unchanged", "repeated", "invalid")} == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "repeated": 0,
        "invalid": 0,
    }
    new = Subscriber.objects.get(foreign_id="new")
    assert [(item["foreign_id"], item["status"], item["id"], item["changed"]) for item in body["items"]] == [
        ("new", "created", new.pk, []),
        ("same", "unchanged", same.pk, []),
        ("moved", "updated", moved.pk, ["locale"]),
    ]
    assert (new.locale, new.search_name, new.channel) == ("en-US", "grace hopper", messenger)
    same.refresh_from_db()
    moved.refresh_from_db()
    assert same.updated_at == LONG_AGO and same.last_seen_at > LONG_AGO
    assert moved.updated_at > LONG_AGO and moved.locale == "fr-FR"


def test_invalid_items_are_reported_and_the_valid_ones_stored(api_client, messenger):
    response = _post(
        api_client,
        [
            {"foreign_id": "ok-1", "first_name": "Ada"},
            {"foreign_id": "bad", "locale": "english!", "gender": "robot"},
            {"first_name": "No id"},
            "not an object",
            {"foreign_id": "ok-2", "nickname": "x"},
            {"foreign_id": "ok-3"},
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["invalid"]) == (2, 4)
    statuses = [(item["index"], item["foreign_id"], item["status"]) for item in body["items"]]
    assert statuses == [
        (0, "ok-1", "created"),
        (1, "bad", "invalid"),
        (2, None, "invalid"),
        (3, None, "invalid"),
        (4, "ok-2", "invalid"),
        (5, "ok-3", "created"),
    ]
    bad = body["items"][1]["errors"]
    assert sorted(error["loc"][-1] for error in bad) == ["gender", "locale"]
    assert bad[0]["loc"][:4] == ["body", "batch", "subscribers", 1]
    assert body["items"][2]["errors"][0]["loc"][-1] == "foreign_id"
    assert sorted(Subscriber.objects.values_list("foreign_id", flat=True)) == ["ok-1", "ok-3"]


def test_a_foreign_id_with_a_slash_is_invalid_as_no_address_could_reach_it(api_client, messenger):
    body = _post(api_client, [{"foreign_id": "with/slash"}]).json()
    assert body["invalid"] == 1
    assert body["items"][0]["errors"][0]["msg"] == "A foreign id cannot contain “/”: no API address could reach it."
    assert not Subscriber.objects.exists()


def test_long_names_in_scripts_that_transliterate_long_are_stored(api_client, messenger):
    people = [{"foreign_id": "cjk", "first_name": "中" * 200}, {"foreign_id": "emoji", "last_name": "😀" * 60}]
    response = _post(api_client, people)
    assert response.status_code == 200 and response.json()["created"] == 2
    assert Subscriber.objects.get(foreign_id="cjk").first_name == "中" * 200


def test_a_foreign_id_named_twice_takes_the_last_item(api_client, messenger):
    response = _post(
        api_client,
        [{"foreign_id": "twice", "first_name": "First"}, {"foreign_id": "twice", "first_name": "Last"}],
    )

    body = response.json()
    assert [item["status"] for item in body["items"]] == ["repeated", "created"]
    assert body["items"][0]["id"] == body["items"][1]["id"]
    assert Subscriber.objects.get().first_name == "Last"


def test_more_than_500_gets_400_and_stores_nothing(api_client, messenger):
    response = _post(api_client, [{"foreign_id": f"p-{number}"} for number in range(501)])

    assert response.status_code == 400
    assert response.json() == {"detail": "At most 500 subscribers per request: send the others in another."}
    assert not Subscriber.objects.exists()


def test_500_people_are_stored_in_a_few_queries(api_client, make_subscriber, messenger, django_assert_num_queries):
    for number in range(0, 500, 2):
        make_subscriber(foreign_id=f"p-{number}", first_name="Known", last_name="")
    assert api_client.get("/api/v1/channels/messenger/subscribers/p-0").status_code == 200  # the key cached
    people = [
        {"foreign_id": f"p-{number}", "first_name": "Known" if number % 4 == 0 else "New"} for number in range(500)
    ]

    with django_assert_num_queries(5):
        # 1. UPDATE last_seen_at of the 250 known … RETURNING their profiles: 125 are as sent
        # 2. SAVEPOINT (BEGIN outside tests)
        # 3. one INSERT … ON CONFLICT DO UPDATE … RETURNING for the 375 others (they all send first_name)
        # 4. the active webhook endpoints: none, so no outbox row
        # 5. RELEASE SAVEPOINT (COMMIT)
        response = _post(api_client, people)

    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (250, 125, 125)
    assert Subscriber.objects.count() == 500


def test_it_sends_one_event_per_person_created_or_changed(api_client, make_subscriber, messenger):
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=list(Event.values))
    make_subscriber(foreign_id="known", first_name="Ada")

    _post(api_client, [{"foreign_id": "new", "first_name": "Grace"}, {"foreign_id": "known", "first_name": "Augusta"}])

    events = [(delivery.event, json.loads(delivery.body)["data"]) for delivery in Delivery.objects.order_by("pk")]
    assert [(event, data["subscriber"]["foreign_id"], data.get("changed")) for event, data in events] == [
        (Event.SUBSCRIBER_CREATED, "new", None),
        (Event.SUBSCRIBER_UPDATED, "known", ["first_name"]),
    ]


def test_a_key_limited_to_other_channels_gets_403(messenger):
    _key, full_key = create_api_key("Console bot", channels=[Channel.objects.get(name="console")])
    response = _post_with(full_key, [{"foreign_id": "x"}])
    assert response.status_code == 403
    assert not Subscriber.objects.exists()


def _post_with(full_key, people):
    client = Client(headers={"Authorization": f"Bearer {full_key}"})
    return _post(client, people)


def test_an_unknown_channel_gets_404(api_client):
    assert _post(api_client, [{"foreign_id": "x"}], channel="telegram").status_code == 404


def test_a_body_up_to_a_megabyte_is_accepted(api_client, messenger):
    avatar = "https://example.com/" + "a" * 900
    people = [{"foreign_id": f"p-{number}", "avatar_url": avatar} for number in range(500)]
    response = _post(api_client, people)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == 500
    too_big = api_client.post(URL, "x" * (1024 * 1024 + 1), content_type="application/json")
    assert too_big.status_code == 413
    assert too_big.json() == {"detail": "The request body is larger than 1024 KB."}


def test_a_batch_of_invalid_items_only_stores_nothing(api_client, messenger):
    response = _post(api_client, [{"first_name": "No id"}])
    assert response.status_code == 200
    assert (response.json()["invalid"], Subscriber.objects.count()) == (1, 0)
    assert _post(api_client, []).json()["items"] == []
