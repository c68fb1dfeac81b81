# ruff: noqa: RUF001  (Cyrillic and Greek names on purpose: the search must fold them)
"""The search forgives case, accents and script, on the Subscribers page and the API, on both databases.

It matches `Subscriber.search_name`, the folded name (subscribers.search), which every path that
writes a name keeps right: the actions, the admin's edit form, the API, the CSV import, the demo
seed, and the migration that filled it for the rows written before it existed.
"""

import importlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

import subscribers.actions
from subscribers.actions import upsert_subscriber
from subscribers.filters import search_by_name
from subscribers.models import Subscriber
from subscribers.search import search_name

pytestmark = pytest.mark.django_db

PAGE = reverse("subscribers:list")
API = "/api/v1/subscribers"


@pytest.fixture
def people(make_subscriber):
    make_subscriber(first_name="Hélène", last_name="Boucher", foreign_id="p-helene")
    make_subscriber(first_name="Анна", last_name="Ермакова", foreign_id="p-anna")
    make_subscriber(first_name="Thomas", last_name="Müller", foreign_id="p-thomas")
    make_subscriber(first_name="Ada", last_name="Lovelace", foreign_id="p-ada")
    make_subscriber(first_name="Grace", last_name="Hopper", foreign_id="p-grace")
    make_subscriber(first_name="Percy", last_name="100%_sure", foreign_id="p-percy")


EXAMPLES = [
    ("helene", ["Hélène Boucher"]),
    ("HÉLÈNE", ["Hélène Boucher"]),
    ("ermakova", ["Анна Ермакова"]),
    ("Ермакова", ["Анна Ермакова"]),
    ("ЕРМАКОВА анна", ["Анна Ермакова"]),
    ("muller", ["Thomas Müller"]),
    ("Müller", ["Thomas Müller"]),
    ("lovelace ada", ["Ada Lovelace"]),
    ("ada lovelace", ["Ada Lovelace"]),
    ("  Ada   LOVELACE ", ["Ada Lovelace"]),
    ("ada hopper", []),
    ("p-grace", ["Grace Hopper"]),  # the exact foreign id
    ("p-", []),  # ...only exact
]


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


@pytest.mark.parametrize(("query", "expected"), EXAMPLES)
def test_the_subscribers_page_finds_names_whatever_their_case_accents_script_and_word_order(
    signed_in, people, query, expected
):
    response = signed_in.get(PAGE, {"q": query})
    assert sorted(row.record.full_name for row in response.context["table"].paginated_rows) == expected


@pytest.mark.parametrize(("query", "expected"), EXAMPLES)
def test_the_api_q_is_the_same_search(api_client, people, query, expected):
    response = api_client.get(API, {"q": query})
    assert response.status_code == 200, response.content
    found = [f"{item['first_name']} {item['last_name']}" for item in response.json()["items"]]
    assert sorted(found) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("%", ["Percy 100%_sure"]),  # a percent sign typed is a percent sign, not "anything"
        ("_", ["Percy 100%_sure"]),
        ("0%_s", ["Percy 100%_sure"]),
        ("0_%s", []),
        ("a%e", []),  # would match Grace, Hélène... as a pattern
        ("h_pper", []),
    ],
)
def test_like_wildcards_typed_by_the_operator_match_themselves(signed_in, api_client, people, query, expected):
    response = signed_in.get(PAGE, {"q": query})
    assert sorted(row.record.full_name for row in response.context["table"].paginated_rows) == expected
    items = api_client.get(API, {"q": query}).json()["items"]
    assert sorted(f"{item['first_name']} {item['last_name']}" for item in items) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zh", ["Ivan Zh-Li", "Li Zh", "Xu Zhang", "Zoë Bozhko", "Жанна Ng"]),  # start, middle, end, before "-"
        ("ZH", ["Ivan Zh-Li", "Li Zh", "Xu Zhang", "Zoë Bozhko", "Жанна Ng"]),
        ("z", ["Ivan Zh-Li", "Li Zh", "Xu Zhang", "Zoë Bozhko", "Жанна Ng"]),
        ("qx", []),
        ("42", ["R2 D42"]),
        ("2 d", ["R2 D42"]),
        ("zh ng", ["Xu Zhang", "Жанна Ng"]),
    ],
)
def test_one_or_two_letter_words_match_anywhere_in_the_name(signed_in, api_client, make_subscriber, query, expected):
    names = [("Xu", "Zhang"), ("Zoë", "Bozhko"), ("Li", "Zh"), ("Ivan", "Zh-Li"), ("Жанна", "Ng"), ("R2", "D42")]
    for first, last in names:
        make_subscriber(first_name=first, last_name=last)
    make_subscriber(first_name="Ada", last_name="Lovelace")
    response = signed_in.get(PAGE, {"q": query})
    assert sorted(row.record.full_name for row in response.context["table"].paginated_rows) == expected
    items = api_client.get(API, {"q": query}).json()["items"]
    assert sorted(f"{item['first_name']} {item['last_name']}" for item in items) == expected


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Trigram indexes exist on PostgreSQL only.")
def test_postgresql_finds_two_letters_from_the_trigram_index(make_subscriber):
    make_subscriber(first_name="Xu", last_name="Zhang")
    sql, params = search_by_name(Subscriber.objects.order_by(), "zh").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a one-row table is read whole whatever the indexes
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on subscriber_search_name_trgm" in plan and "Seq Scan" not in plan


# Every path that writes a name keeps search_name right ---------------------------------------------------


def stored(foreign_id):
    return Subscriber.objects.values_list("search_name", flat=True).get(foreign_id=foreign_id)


def test_search_name_is_the_folded_first_and_last_name():
    assert search_name("  Hélène ", "Ермакова  ") == "helene ermakova"
    assert search_name("", "MÜLLER") == "muller"
    assert search_name("", "") == ""


def test_upsert_subscriber_writes_it_on_first_contact_and_on_a_new_name(messenger):
    upsert_subscriber(messenger, "u1", {"first_name": "Zoë", "last_name": "Ермакова"})
    assert stored("u1") == "zoe ermakova"
    upsert_subscriber(messenger, "u1", {"last_name": "Müller"})
    assert stored("u1") == "zoe muller"
    upsert_subscriber(messenger, "u1", {"locale": "de-DE"})  # no name sent: the name stays
    assert stored("u1") == "zoe muller"


def test_one_half_of_a_name_sent_while_someone_changes_the_other_half_keeps_it_right(messenger, monkeypatch):
    upsert_subscriber(messenger, "p-race", {"first_name": "Ada", "last_name": "Lovelace"})
    original = subscribers.actions._mark_seen

    def seen_then_renamed_by_someone_else(*args, **kwargs):
        found = original(*args, **kwargs)
        # Between this request's look and its write, another one changes the last name.
        Subscriber.objects.filter(foreign_id="p-race").update(last_name="Byron", search_name="ada byron")
        return found

    monkeypatch.setattr(subscribers.actions, "_mark_seen", seen_then_renamed_by_someone_else)
    subscriber, _, changed = upsert_subscriber(messenger, "p-race", {"first_name": "Augusta"})

    assert changed == ["first_name"]
    stored = Subscriber.objects.get(foreign_id="p-race")
    assert (stored.first_name, stored.last_name) == ("Augusta", "Byron")
    assert stored.search_name == subscriber.search_name == "augusta byron"


def test_the_api_upsert_writes_it(api_client):
    response = api_client.put(
        "/api/v1/channels/messenger/subscribers/a1",
        {"first_name": "Hélène", "last_name": "Boucher"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert stored("a1") == "helene boucher"
    api_client.put("/api/v1/channels/messenger/subscribers/a1", {"first_name": "Анна"}, content_type="application/json")
    assert stored("a1") == "anna boucher"
    assert api_client.get(API, {"q": "anna"}).json()["items"][0]["foreign_id"] == "a1"


def test_a_model_save_writes_it_even_with_update_fields(make_subscriber):
    person = make_subscriber(first_name="Ada", last_name="Lovelace", foreign_id="m1")
    assert stored("m1") == "ada lovelace"
    person.last_name = "Łukasiewicz"
    person.save(update_fields=["last_name"])
    assert stored("m1") == "ada lukasiewicz"


def test_the_orm_bulk_paths_write_it_or_refuse_a_name_without_it(messenger):
    Subscriber.objects.bulk_create([Subscriber(channel=messenger, foreign_id="k1", first_name="Zoë", last_name="Ng")])
    assert stored("k1") == "zoe ng"
    person = Subscriber.objects.get(foreign_id="k1")
    person.first_name = "Łucja"
    Subscriber.objects.bulk_update([person], ["first_name"])
    assert stored("k1") == "lucja ng"
    with pytest.raises(TypeError, match="search_name"):
        Subscriber.objects.filter(pk=person.pk).update(last_name="Ермакова")
    Subscriber.objects.filter(pk=person.pk).update(last_name="Ермакова", search_name=search_name("Łucja", "Ермакова"))
    assert stored("k1") == "lucja ermakova"
    Subscriber.objects.filter(pk=person.pk).update(locale="pl")  # no name: nothing to keep


def test_the_admin_edit_form_writes_it(client, admin_user, make_subscriber):
    person = make_subscriber(first_name="Ada", last_name="Lovelace", foreign_id="admin-1")
    client.force_login(admin_user)
    url = reverse("admin:subscribers_subscriber_change", args=[person.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(
        {
            "first_name": "Ἀριστοτέλης",
            "last_name": "Παπαδόπουλος",
            "label_assignments-TOTAL_FORMS": "0",
            "label_assignments-INITIAL_FORMS": "0",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert stored("admin-1") == search_name("Ἀριστοτέλης", "Παπαδόπουλος") == "aristotelis papadopoylos"


def test_a_csv_import_writes_it_and_the_search_finds_the_imported_person(tmp_path, signed_in):
    path = tmp_path / "people.csv"
    path.write_text("channel,foreign_id,first_name,last_name\nmessenger,c1,Hélène,Ермакова\n", encoding="utf-8")
    call_command("import_subscribers", str(path), stdout=StringIO(), stderr=StringIO())
    assert stored("c1") == "helene ermakova"
    response = signed_in.get(PAGE, {"q": "ermakova helene"})
    assert [row.record.foreign_id for row in response.context["table"].paginated_rows] == ["c1"]
    # ...and an import that renames someone rewrites it.
    path.write_text("channel,foreign_id,first_name,last_name\nmessenger,c1,Thomas,Müller\n", encoding="utf-8")
    call_command("import_subscribers", str(path), stdout=StringIO(), stderr=StringIO())
    assert stored("c1") == "thomas muller"


def test_the_demo_seed_writes_it(db):
    call_command("seed_demo", "--subscribers", "30", "--labels", "3", stdout=StringIO())
    rows = list(Subscriber.objects.values_list("first_name", "last_name", "search_name"))
    assert len(rows) == 30
    assert all(stored == search_name(first, last) != "" for first, last, stored in rows)


def test_every_subscriber_written_by_the_paths_above_has_the_right_search_name(messenger, api_client, tmp_path):
    """A sweep over all the write paths at once, so a new path that forgets the column shows up here."""
    upsert_subscriber(messenger, "s1", {"first_name": "Émile", "last_name": "Zola"})
    Subscriber.objects.create(channel=messenger, foreign_id="s2", first_name="Jürgen", last_name="Ωμέγα")
    api_client.put("/api/v1/channels/messenger/subscribers/s3", {"last_name": "Ñandú"}, content_type="application/json")
    path = tmp_path / "people.csv"
    path.write_text("channel,foreign_id,first_name\nweb,s4,Ærøskøbing\n", encoding="utf-8")
    call_command("import_subscribers", str(path), stdout=StringIO(), stderr=StringIO())
    call_command("seed_demo", "--subscribers", "5", "--labels", "1", stdout=StringIO())
    rows = list(Subscriber.objects.values_list("first_name", "last_name", "search_name"))
    assert len(rows) == 9
    assert [row for row in rows if row[2] != search_name(row[0], row[1])] == []


# The migration's backfill ---------------------------------------------------------------------------------


def test_the_backfill_fills_empty_search_names_in_windows_and_leaves_the_others(make_subscriber):
    migration = importlib.import_module("subscribers.migrations.0013_search_name_backfill_and_index")
    for number in range(7):
        make_subscriber(first_name=f"Hélène{number}", last_name="Ермакова", foreign_id=f"b{number}")
    make_subscriber(first_name="", last_name="", foreign_id="nameless")
    make_subscriber(first_name="Ada", last_name="Lovelace", foreign_id="kept")
    Subscriber.objects.exclude(foreign_id="kept").update(search_name="")  # as rows written before the column
    Subscriber.objects.filter(foreign_id="kept").update(search_name="already here")

    assert migration.backfill_search_names(Subscriber, window=3) == 7
    assert stored("b0") == "helene0 ermakova" and stored("b6") == "helene6 ermakova"
    assert stored("nameless") == "" and stored("kept") == "already here"
    assert migration.backfill_search_names(Subscriber, window=3) == 0  # a second run finds nothing to do
