"""The bot API's per-message call at conversation speed: PUT /api/v1/channels/<channel>/subscribers/<id>.

A repeat visit with the same profile is one statement; a first contact or a real change, two (plus the
webhook outbox's row when an endpoint listens). The whole stack is counted: middleware, key, rate limit.
"""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from subscribers import actions
from subscribers.models import Subscriber
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/channels/messenger/subscribers/psid-42"
PROFILE = {"first_name": "Ada", "last_name": "Lovelace", "locale": "en-GB", "timezone": "Europe/London"}
LONG_AGO = timezone.now() - timedelta(days=30)


def _put(client, body, url=URL, **headers):
    return client.put(url, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def listening(db):
    return Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=list(Event.values))


@pytest.fixture
def ada(make_subscriber, make_label):
    subscriber = make_subscriber(foreign_id="psid-42", updated_at=LONG_AGO, last_seen_at=LONG_AGO, **PROFILE)
    subscriber.labels.add(make_label("VIP", name="vip"), make_label("Active"))
    return subscriber


def _warm(api_client):
    """One call first, so the key, its channels and the channel are in the process's cache (api.key_cache)."""
    assert api_client.get("/api/v1/channels/messenger/subscribers/psid-0").status_code == 404


def test_a_repeat_visit_moves_last_seen_only_and_answers_the_labels(api_client, ada, listening):
    response = _put(api_client, PROFILE)

    assert response.status_code == 200
    assert [label["name"] for label in response.json()["labels"]] == ["active", "vip"]
    ada.refresh_from_db()
    assert ada.updated_at == LONG_AGO
    assert ada.last_seen_at > LONG_AGO
    assert response.json()["last_seen_at"].startswith(ada.last_seen_at.isoformat()[:19])
    assert not Delivery.objects.exists(), "a visit is no change: no webhook"


def test_a_real_change_moves_updated_at_and_announces_only_the_changed_fields(
    api_client, ada, listening, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _put(api_client, {**PROFILE, "locale": "fr-FR"})

    assert response.status_code == 200
    assert response.json()["locale"] == "fr-FR"
    assert [label["name"] for label in response.json()["labels"]] == ["active", "vip"]
    ada.refresh_from_db()
    assert ada.updated_at > LONG_AGO
    assert ada.updated_at == ada.last_seen_at
    [delivery] = Delivery.objects.all()
    body = json.loads(delivery.body)
    assert (delivery.event, body["data"]["changed"]) == (Event.SUBSCRIBER_UPDATED, ["locale"])
    assert body["data"]["subscriber"]["locale"] == "fr-FR"
    assert len(callbacks) == 1, "the delivery is queued once the change commits"


def test_a_first_contact_creates_and_announces(api_client, messenger, listening, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _put(api_client, PROFILE)

    assert response.status_code == 201
    assert response.json()["labels"] == []
    subscriber = Subscriber.objects.get()
    assert subscriber.created_at == subscriber.updated_at == subscriber.last_seen_at
    assert subscriber.search_name == "ada lovelace"
    [delivery] = Delivery.objects.all()
    assert delivery.event == Event.SUBSCRIBER_CREATED
    assert json.loads(delivery.body)["data"]["subscriber"]["id"] == subscriber.pk


def test_an_inactive_endpoint_gets_nothing(api_client, messenger, listening):
    Endpoint.objects.update(is_active=False)
    assert _put(api_client, PROFILE).status_code == 201
    assert not Delivery.objects.exists()


def test_one_name_sent_alone_keeps_the_other_in_the_search_name(api_client, ada):
    _put(api_client, {"first_name": "Augusta"})
    ada.refresh_from_db()
    assert (ada.first_name, ada.last_name, ada.search_name) == ("Augusta", "Lovelace", "augusta lovelace")


def test_a_name_in_another_script_is_folded_for_the_search(api_client, messenger):
    _put(api_client, {"first_name": "Ирина", "last_name": "Ермакова"})
    assert Subscriber.objects.get().search_name == "irina ermakova"


def test_nothing_sent_is_a_visit(api_client, ada):
    response = _put(api_client, {})
    assert response.status_code == 200
    ada.refresh_from_db()
    assert (ada.updated_at, ada.first_name) == (LONG_AGO, "Ada")


# Queries, through the whole stack ---------------------------------------------------------------------


def test_a_repeat_visit_is_one_query(api_client, ada, listening, django_assert_num_queries):
    _warm(api_client)
    with django_assert_num_queries(1):
        # 1. UPDATE last_seen_at … RETURNING the stored profile and the labels: same profile, done
        assert _put(api_client, PROFILE).status_code == 200


def test_a_first_contact_is_two_queries(api_client, messenger, django_assert_num_queries):
    _warm(api_client)
    with django_assert_num_queries(4):
        # 1. UPDATE last_seen_at …: nobody yet
        # 2. SAVEPOINT (BEGIN outside tests)
        # 3. INSERT … ON CONFLICT DO UPDATE … RETURNING, with the active webhook endpoints: none
        # 4. RELEASE SAVEPOINT (COMMIT)
        assert _put(api_client, PROFILE).status_code == 201


def test_a_first_contact_with_a_listening_endpoint_adds_the_outbox_row(
    api_client, messenger, listening, django_assert_num_queries
):
    _warm(api_client)
    with django_assert_num_queries(5):
        # 1. UPDATE last_seen_at …: nobody yet
        # 2. SAVEPOINT (BEGIN outside tests)
        # 3. INSERT … ON CONFLICT DO UPDATE … RETURNING, with the active webhook endpoints
        # 4. INSERT the delivery into the webhook outbox
        # 5. RELEASE SAVEPOINT (COMMIT)
        assert _put(api_client, PROFILE).status_code == 201


def test_a_real_change_is_two_queries(api_client, ada, django_assert_num_queries):
    _warm(api_client)
    with django_assert_num_queries(4):
        # 1. UPDATE last_seen_at … RETURNING the stored profile: the locale differs
        # 2. SAVEPOINT (BEGIN outside tests)
        # 3. INSERT … ON CONFLICT DO UPDATE … RETURNING, with the active webhook endpoints: none
        # 4. RELEASE SAVEPOINT (COMMIT)
        assert _put(api_client, {**PROFILE, "locale": "fr-FR"}).status_code == 200


# Sparing the console's middleware ---------------------------------------------------------------------


def test_the_api_answers_without_session_csrf_or_page_headers(api_client, ada):
    response = _put(api_client, PROFILE)

    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert "Content-Security-Policy" not in response
    assert response["X-Content-Type-Options"] == "nosniff", "SecurityMiddleware still runs"


def test_the_api_speaks_the_language_of_the_request(api_client, messenger, operator):
    url = "/api/v1/channels/telegram/subscribers/x"
    response = api_client.get(url, headers={"Accept-Language": "fr"})
    assert response.json() == {"detail": "Il n’y a pas de canal nommé «\xa0telegram\xa0»."}  # noqa: RUF001

    page = Client()
    page.force_login(operator)
    page.get("/subscribers/", headers={"Accept-Language": "fr"})  # leaves French active in this thread
    assert api_client.get(url).json() == {"detail": "There is no channel called “telegram”."}


def test_the_docs_still_take_the_consoles_way(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


# The action ---------------------------------------------------------------------------------------------


def test_the_action_returns_the_subscriber_with_its_channel_and_labels(messenger, ada, django_assert_num_queries):
    with django_assert_num_queries(1):
        subscriber, created, changed = actions.upsert_subscriber(messenger, "psid-42", PROFILE)
        assert subscriber.channel.name == "messenger"
        assert sorted(label.name for label in subscriber.labels.all()) == ["active", "vip"]
    assert (subscriber.pk, created, changed) == (ada.pk, False, [])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_only_the_visit_itself_commits_without_waiting_for_the_disk(messenger):
    actions.upsert_subscriber(messenger, "psid-1", {"first_name": "Ada"})
    actions.upsert_subscriber(messenger, "psid-1", {"first_name": "Ada"})
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
