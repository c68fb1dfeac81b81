from datetime import timedelta

import pytest
from django.utils import timezone

from labels.models import Label
from subscribers.models import Channel

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _ids(response):
    assert response.status_code == 200, response.content
    return [item["foreign_id"] for item in response.json()["items"]]


@pytest.fixture
def people(make_subscriber, make_label):
    """Five subscribers updated a minute apart, oldest first, with a few labels each."""
    vip, active, churned = make_label("VIP", name="vip"), make_label("Active"), make_label("Churned")
    web = Channel.objects.get(name="web")
    rows = [
        ("a", "Ada", "Lovelace", "en-GB", [vip, active], None),
        ("b", "Bob", "Marley", "fr", [vip], None),
        ("c", "Chloé", "Dupont", "fr-CA", [active], web),
        ("d", "Dan", "Brown", "de", [churned, active, vip], None),
        ("e", "Eve", "Online", "", [], None),
    ]
    people = {}
    for minute, (foreign_id, first, last, locale, labels, channel) in enumerate(rows):
        fields = {"channel": channel} if channel else {}
        person = make_subscriber(
            foreign_id=foreign_id,
            first_name=first,
            last_name=last,
            locale=locale,
            updated_at=NOW - timedelta(minutes=10 - minute),
            **fields,
        )
        person.labels.add(*labels)
        people[foreign_id] = person
    return people


def test_it_lists_subscribers_oldest_update_first_with_labels(api_client, people):
    response = api_client.get("/api/v1/subscribers")
    assert _ids(response) == ["a", "b", "c", "d", "e"]
    first = response.json()["items"][0]
    assert [label["name"] for label in first["labels"]] == ["active", "vip"]
    assert response.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("any", ["a", "b", "c", "d"]), ("all", ["a", "d"]), ("none", ["e"])],
)
def test_it_filters_by_labels_in_each_mode(api_client, people, mode, expected):
    assert _ids(api_client.get("/api/v1/subscribers", {"label": ["vip", "active"], "mode": mode})) == expected


def test_an_unknown_label_filter_gets_400_naming_it(api_client, people):
    response = api_client.get("/api/v1/subscribers", {"label": ["vip", "gold"]})
    assert response.status_code == 400
    assert response.json()["unknown"] == ["gold"]


def test_an_empty_label_filter_filters_on_nothing(api_client, people):
    assert _ids(api_client.get("/api/v1/subscribers", {"label": ""})) == _ids(api_client.get("/api/v1/subscribers"))


def test_it_filters_by_channel_locale_search_and_update_time(api_client, people):
    assert _ids(api_client.get("/api/v1/subscribers", {"channel": "web"})) == ["c"]
    assert _ids(api_client.get("/api/v1/subscribers", {"locale": "fr"})) == ["b", "c"]
    assert _ids(api_client.get("/api/v1/subscribers", {"locale": "fr-CA"})) == ["c"]
    assert _ids(api_client.get("/api/v1/subscribers", {"q": "LOVE"})) == ["a"]
    assert _ids(api_client.get("/api/v1/subscribers", {"q": "b"})) == ["b", "d"]
    since = (NOW - timedelta(minutes=7, seconds=30)).isoformat()
    assert _ids(api_client.get("/api/v1/subscribers", {"updated_since": since})) == ["d", "e"]


def test_updated_since_without_a_time_zone_gets_422(api_client, people):
    response = api_client.get("/api/v1/subscribers", {"updated_since": "2026-01-01T00:00:00"})
    assert response.status_code == 422


def test_the_cursor_walks_every_subscriber_once(api_client, people):
    seen, cursor = [], ""
    for _ in range(5):
        response = api_client.get("/api/v1/subscribers", {"limit": 2, "cursor": cursor})
        seen += _ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]


def test_the_cursor_holds_across_equal_update_times(api_client, people):
    people["a"].__class__.objects.update(updated_at=NOW)
    first = api_client.get("/api/v1/subscribers", {"limit": 3}).json()
    rest = api_client.get("/api/v1/subscribers", {"limit": 3, "cursor": first["next_cursor"]})
    assert sorted(item["foreign_id"] for item in first["items"]) + sorted(_ids(rest)) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("cursor", ["garbage!", "MjAyNi0wMS0wMXwx", "bm9wZQ"])
def test_a_forged_cursor_gets_422(api_client, people, cursor):
    response = api_client.get("/api/v1/subscribers", {"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["query", "cursor"], "msg": "The cursor is not one this API returned.", "type": "invalid"}
    ]


def test_limit_is_bounded(api_client, people):
    assert api_client.get("/api/v1/subscribers", {"limit": 0}).status_code == 422
    assert api_client.get("/api/v1/subscribers", {"limit": 201}).status_code == 422


def test_the_list_runs_a_fixed_number_of_queries(api_client, api_key, people, django_assert_num_queries):
    # Sets last_used_at, which is then written at most once a minute, and leaves the key in the process's
    # cache (api.key_cache), so the request below costs no query for it.
    api_client.get("/api/v1/labels")
    with django_assert_num_queries(4):
        # 1. the labels named in the filter, to name the unknown ones in a 400
        # 2. the same, read by the Subscribers page's filter, which the list uses
        # 3. the page of subscribers with their channels
        # 4. the labels of every subscriber on the page
        response = api_client.get("/api/v1/subscribers", {"label": ["vip", "active"], "limit": 3})
    assert len(response.json()["items"]) == 3


def test_get_labels_lists_every_label(api_client, make_label):
    make_label("VIP", name="vip", description="Big spenders", color="purple")
    response = api_client.get("/api/v1/labels")
    assert response.status_code == 200
    assert response.json() == [
        {"id": Label.objects.get().pk, "name": "vip", "title": "VIP", "description": "Big spenders", "color": "purple"}
    ]


def test_post_labels_creates_one_and_generates_its_name(api_client):
    response = api_client.post("/api/v1/labels", {"title": "Intéressé par les produits"}, "application/json")
    assert response.status_code == 201
    assert response.json()["name"] == "interesse_par_les_produits"
    assert Label.objects.get().title == "Intéressé par les produits"


def test_post_labels_checks_like_the_app_dialog(api_client, make_label):
    make_label("VIP", name="vip")
    response = api_client.post("/api/v1/labels", {"title": "vip", "name": "vip"}, "application/json")
    assert response.status_code == 422
    messages = {error["loc"][-1]: error["msg"] for error in response.json()["detail"]}
    assert messages == {
        "title": "A label with this title already exists.",
        "name": "The name “vip” is taken. “vip_2” is free.",
    }
    assert Label.objects.count() == 1


def test_post_labels_refuses_a_malformed_name(api_client):
    response = api_client.post("/api/v1/labels", {"title": "Gold", "name": "Gold Club"}, "application/json")
    assert response.status_code == 422
    assert not Label.objects.exists()


def test_a_label_filtered_list_walks_by_id_with_its_own_cursor(api_client, people):
    people["a"].__class__.objects.filter(pk=people["a"].pk).update(updated_at=NOW)  # its profile changed last
    seen, cursor = [], ""
    while True:
        response = api_client.get("/api/v1/subscribers", {"label": ["vip", "active"], "limit": 1, "cursor": cursor})
        seen += _ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["a", "b", "c", "d"], "by id, whatever the update times"
    first = api_client.get("/api/v1/subscribers", {"label": ["vip"], "limit": 1}).json()["next_cursor"]
    assert api_client.get("/api/v1/subscribers", {"cursor": first}).status_code == 422, "not a cursor of this order"


def test_the_default_cursor_compares_one_row_value(api_client, people):
    from api.queries import after_cursor, encode_cursor
    from subscribers.models import Subscriber

    sql = str(after_cursor(Subscriber.objects.all(), encode_cursor(people["b"], by_id=False)).query)
    assert '("subscribers_subscriber"."updated_at", "subscribers_subscriber"."id") >' in sql


def test_the_list_uses_the_subscribers_page_filter(api_client, people):
    assert _ids(api_client.get("/api/v1/subscribers", {"q": "ada lovelace"})) == ["a"]
    assert _ids(api_client.get("/api/v1/subscribers", {"q": "lovelace ada"})) == ["a"]
    response = api_client.get("/api/v1/subscribers", {"locale": "not a locale!"})
    assert response.status_code == 422
    assert "is not a locale" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("edge", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_updated_since_at_the_calendars_edge_gets_422(api_client, people, edge):
    response = api_client.get("/api/v1/subscribers", {"updated_since": edge})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "updated_since"]


def test_the_label_cursor_is_repeated_inside_the_label_subquery(api_client, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = api_client.get("/api/v1/subscribers", {"label": ["vip"], "limit": 1}).json()["next_cursor"]
    with CaptureQueriesContext(connection) as queries:
        api_client.get("/api/v1/subscribers", {"label": ["vip"], "limit": 1, "cursor": first})
    [page] = [
        q["sql"] for q in queries.captured_queries if 'FROM "subscribers_subscriber"' in q["sql"].split("WHERE")[0]
    ]
    assert f'"U0"."subscriber_id" > {people["a"].pk}' in page, "the range is repeated in the label subquery"
