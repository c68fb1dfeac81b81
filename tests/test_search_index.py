"""The name search matches every word in the folded name (search_name): on PostgreSQL, from a trigram index."""

import pytest
from django.db import connection
from django.http import QueryDict

from subscribers.filters import SubscriberFilter
from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db


def found(query):
    filters = SubscriberFilter(QueryDict(f"q={query}"), queryset=Subscriber.objects.all())
    return sorted(str(subscriber) for subscriber in filters.qs)


@pytest.fixture
def people(make_subscriber):
    make_subscriber(first_name="Ada", last_name="Lovelace", foreign_id="psid-1")
    make_subscriber(first_name="Grace", last_name="Hopper", foreign_id="psid-2")
    make_subscriber(first_name="Adam", last_name="Smith", foreign_id="ada")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ada", ["Ada Lovelace", "Adam Smith"]),  # "ada" is also Adam Smith's foreign id
        ("LOVE", ["Ada Lovelace"]),
        ("ada love", ["Ada Lovelace"]),
        ("lovelace ada", ["Ada Lovelace"]),
        ("a l", ["Ada Lovelace"]),  # each word in either name, never across the space between them
        ("e h", ["Grace Hopper"]),
        ("psid-2", ["Grace Hopper"]),
        ("nobody", []),
    ],
)
def test_each_word_is_found_in_the_first_or_the_last_name(people, query, expected):
    assert found(query) == expected


def test_a_word_never_matches_across_the_two_names(people):
    assert found("alovelace") == []
    assert found("ce h") == ["Grace Hopper"]  # two words, each in a name


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Trigram indexes exist on PostgreSQL only.")
def test_postgresql_answers_the_search_from_the_trigram_and_foreign_id_indexes(people):
    filters = SubscriberFilter(QueryDict("q=lovelace"), queryset=Subscriber.objects.all())
    sql, params = filters.qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        # A three-row table is read whole whatever the indexes; forbid that to see which index the plan uses.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "subscriber_search_name_trgm" in plan
    assert "subscriber_unique_per_channel" in plan
