import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import key_cache
from api.actions import create_api_key, revoke_api_keys
from api.auth import PerKeyRateLimit, _note_use_once
from api.models import ApiKey, hash_secret
from subscribers.models import Channel

pytestmark = pytest.mark.django_db

PROFILE_URL = "/api/v1/channels/messenger/subscribers/psid-1"


def _client(full_key):
    return Client(headers={"Authorization": f"Bearer {full_key}"})


@pytest.fixture
def console(db):
    return Channel.objects.get(name="console")


def test_it_stores_only_the_prefix_and_a_hash_of_the_key(api_key):
    prefix, secret = api_key.full_key.split("_")[1:]
    stored = ApiKey.objects.get()
    assert stored.prefix == prefix
    assert stored.secret_hash == hash_secret(secret)
    assert secret not in str(ApiKey.objects.values().get())


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Token abc"}, {"Authorization": "Bearer hxs_x_y"}],
)
def test_a_missing_or_malformed_key_gets_401(headers, api_key):
    response = Client(headers=headers).get("/api/v1/labels")
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing, wrong or revoked API key."}
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_wrong_secret_with_a_real_prefix_gets_401(api_key):
    wrong = api_key.full_key[:-4] + "abcd"
    assert _client(wrong).get("/api/v1/labels").status_code == 401


def test_a_revoked_key_gets_401(api_key, api_client):
    assert api_client.get("/api/v1/labels").status_code == 200
    revoke_api_keys(ApiKey.objects.all())
    assert api_client.get("/api/v1/labels").status_code == 401


def test_the_api_does_not_redirect_to_the_login_page(api_key):
    assert Client().get(PROFILE_URL).status_code == 401


def test_a_key_limited_to_other_channels_gets_403(console, messenger, make_subscriber):
    make_subscriber(foreign_id="psid-1")
    _key, full_key = create_api_key("Console bot", channels=[console])
    client = _client(full_key)

    response = client.get(PROFILE_URL)
    assert response.status_code == 403
    assert response.json() == {"detail": "This API key may not be used for the channel “messenger”."}
    assert client.put(PROFILE_URL, {}, content_type="application/json").status_code == 403
    assert client.post(f"{PROFILE_URL}/labels", {}, content_type="application/json").status_code == 403
    assert client.get("/api/v1/subscribers", {"channel": "messenger"}).status_code == 403


def test_a_key_limited_to_a_channel_may_use_it(console, make_subscriber):
    make_subscriber(channel=console, foreign_id="c-1")
    _key, full_key = create_api_key("Console bot", channels=[console])
    assert _client(full_key).get("/api/v1/channels/console/subscribers/c-1").status_code == 200


def test_a_limited_key_lists_only_its_channels_subscribers(console, make_subscriber):
    make_subscriber(foreign_id="m-1")
    make_subscriber(channel=console, foreign_id="c-1")
    _key, full_key = create_api_key("Console bot", channels=[console])
    items = _client(full_key).get("/api/v1/subscribers").json()["items"]
    assert [item["foreign_id"] for item in items] == ["c-1"]


def test_an_unknown_channel_gets_404(api_client):
    response = api_client.get("/api/v1/channels/telegram/subscribers/x")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no channel called “telegram”."}


def test_it_records_when_a_key_was_last_used_to_the_minute(api_key, api_client):
    assert api_key.last_used_at is None
    api_client.get("/api/v1/labels")
    first_use = ApiKey.objects.get().last_used_at
    assert first_use is not None

    api_client.get("/api/v1/labels")
    assert ApiKey.objects.get().last_used_at == first_use

    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    key_cache.forget()  # as if the process's cache had expired since
    api_client.get("/api/v1/labels")
    assert ApiKey.objects.get().last_used_at > first_use


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_lifetime(api_key, api_client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: clock[0])
    assert api_client.get("/api/v1/labels").status_code == 200
    # Another process revokes it: this one's cache does not hear of it.
    ApiKey.objects.update(revoked_at=timezone.now())

    clock[0] += key_cache.KEY_CACHE_SECONDS - 1
    assert api_client.get("/api/v1/labels").status_code == 200, "still in the cache"
    clock[0] += 1
    assert api_client.get("/api/v1/labels").status_code == 401
    assert key_cache.KEY_CACHE_SECONDS == 10, "README and api.actions.revoke_api_keys say 10 seconds"


def test_a_checked_key_costs_no_query_until_the_cache_expires(api_key, api_client, django_assert_num_queries):
    assert api_client.get("/api/v1/labels").status_code == 200
    with django_assert_num_queries(1):  # the labels; not the key, nor its channels
        assert api_client.get("/api/v1/labels").status_code == 200


def test_channels_given_to_a_key_apply_once_the_cache_expires(api_key, api_client, make_subscriber, console):
    make_subscriber(foreign_id="psid-1")
    assert api_client.get(PROFILE_URL).status_code == 200
    api_key.channels.set([console])
    key_cache.forget()  # what KEY_CACHE_SECONDS later brings
    assert api_client.get(PROFILE_URL).status_code == 403


def test_too_many_requests_get_429_with_retry_after(api_key, api_client):
    ApiKey.objects.update(rate_limit_per_minute=3)
    statuses = [api_client.get("/api/v1/labels").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get("/api/v1/labels")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_rate_limit_is_per_key(api_key, api_client):
    ApiKey.objects.update(rate_limit_per_minute=1)
    _other, other_key = create_api_key("Other bot")
    assert api_client.get("/api/v1/labels").status_code == 200
    assert api_client.get("/api/v1/labels").status_code == 429
    assert _client(other_key).get("/api/v1/labels").status_code == 200


def test_an_oversized_body_gets_413_unread(api_client, messenger):
    body = '{"first_name": "' + "x" * 70_000 + '"}'
    response = api_client.put(PROFILE_URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 64 KB."}
    assert not messenger.subscribers.exists()


def test_a_content_length_that_is_no_number_counts_as_no_body(api_client, messenger):
    response = api_client.get("/api/v1/subscribers", CONTENT_LENGTH="abc")
    assert response.status_code == 200


@pytest.mark.parametrize("extra", [{"QUERY_STRING": "x=%00"}, {"CONTENT_LENGTH": "99999999"}])
def test_the_schema_turns_away_what_the_api_turns_away_without_an_error(db, extra):
    """/api/v1/openapi.json is outside the API's error answers: a request the key check refuses is a visitor
    without a key, sent to log in."""
    response = Client().get("/api/v1/openapi.json", **extra)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_requests_that_arrive_together_write_the_last_use_once(api_key):
    """Concurrent requests of one key all read the same stale `last_used_at`: only the first updates the row."""
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=5))
    read_together = [ApiKey.objects.get(), ApiKey.objects.get(), ApiKey.objects.get()]

    with CaptureQueriesContext(connection) as queries:
        for key in read_together:
            _note_use_once(key)

    writes = [query["sql"] for query in queries if query["sql"].startswith('UPDATE "api_apikey"')]
    assert len(writes) == 1, writes
    assert ApiKey.objects.get().last_used_at > timezone.now() - timedelta(seconds=5)


def test_a_minute_of_requests_writes_the_key_row_once(api_client):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api_client.get("/api/v1/labels").status_code == 200

    assert sum(query["sql"].startswith('UPDATE "api_apikey"') for query in queries) == 1


def test_the_rate_limit_adds_to_the_shared_count_in_batches_of_one_percent(api_key, api_client, monkeypatch):
    ApiKey.objects.update(rate_limit_per_minute=1000)
    added = []
    real = PerKeyRateLimit._add_to_shared_count

    def add(self, cache_key, requests):
        added.append(requests)
        return real(self, cache_key, requests)

    monkeypatch.setattr(PerKeyRateLimit, "_add_to_shared_count", add)
    _not_at_the_end_of_a_minute()
    for _ in range(25):
        assert api_client.get("/api/v1/labels").status_code == 200

    assert added == [10, 10], "one round trip to the cache per 10 requests (1 % of 1,000)"


def test_near_the_limit_every_request_is_counted_in_the_shared_cache(api_key, api_client):
    ApiKey.objects.update(rate_limit_per_minute=100)  # a batch of one: exact, as for small limits
    _not_at_the_end_of_a_minute()
    statuses = [api_client.get("/api/v1/labels").status_code for _ in range(101)]
    assert statuses == [200] * 100 + [429]


def _not_at_the_end_of_a_minute():
    """The counts start again with each minute's window: a test counting requests waits for a fresh one."""
    if time.time() % PerKeyRateLimit.WINDOW_SECONDS > PerKeyRateLimit.WINDOW_SECONDS - 10:
        time.sleep(11)


def test_a_process_that_lost_the_claim_stops_asking_the_cache(api_key):
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=5))
    winner, loser = ApiKey.objects.get(), ApiKey.objects.get()
    _note_use_once(winner)
    _note_use_once(loser)
    assert loser.last_used_at > timezone.now() - timedelta(seconds=5), "so its next requests skip the cache"
