from datetime import UTC as utc
from datetime import datetime

import pytest
from django.db import connection
from django.urls import reverse

from subscribers.actions import add_labels
from subscribers.models import Channel, Subscriber
from subscribers.queries import REACHABLE_ROWS, Total, count_subscribers

pytestmark = pytest.mark.django_db

URL = reverse("subscribers:list")


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def names(response):
    return [row.record.full_name for row in response.context["table"].paginated_rows]


def labelled(subscriber, *labels):
    add_labels(Subscriber.objects.filter(pk=subscriber.pk), labels)
    return subscriber


# Columns and rows ---------------------------------------------------------------------------------------


def test_it_shows_every_column_in_order(signed_in, make_subscriber):
    make_subscriber(first_name="Ada", last_name="Lovelace")
    response = signed_in.get(URL)
    headers = [column.header for column in response.context["table"].columns]
    # An operator may change labels: the first column ticks rows for the bulk actions.
    assert headers == ["Select", "Name", "Channel", "Gender", "Locale", "Labels", "Created", "Updated", "Actions"]


def test_a_row_shows_the_subscriber_with_chips_and_a_manage_labels_button(signed_in, make_subscriber, make_label):
    ada = labelled(
        make_subscriber(first_name="Ada", last_name="Lovelace", gender="female"), make_label("VIP", color="purple")
    )
    html = signed_in.get(URL).text
    assert f'href="{reverse("subscribers:detail", args=[ada.pk])}">Ada Lovelace</a>' in html
    assert "Facebook Messenger" in html or ada.channel.title in html
    assert '<span class="label-chip label-chip--purple" title="vip">VIP</span>' in html
    assert "Female" in html and "en-US" in html
    assert f'id="manage-labels-{ada.pk}"' in html


def test_a_viewer_without_the_labels_permission_gets_no_manage_button(client, django_user_model, make_subscriber):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("vera", password="password")
    viewer.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    make_subscriber()
    client.force_login(viewer)
    response = client.get(URL)
    assert response.status_code == 200
    assert "Manage labels" not in response.text
    assert "select" not in [column.name for column in response.context["table"].columns]
    assert 'name="ids"' not in response.text and "Add labels…" not in response.text


def test_an_empty_database_says_no_subscribers_yet(signed_in):
    html = signed_in.get(URL).text
    assert "No subscribers yet" in html
    assert "They appear here when people talk to the bot." in html


def test_an_empty_result_offers_to_clear_the_filters(signed_in, make_subscriber):
    make_subscriber(first_name="Ada")
    html = signed_in.get(URL, {"q": "Zebulon"}).text
    assert "No subscriber matches these filters" in html
    assert "No subscribers yet" not in html
    assert f'href="{URL}">Clear filters</a>' in html


# Search --------------------------------------------------------------------------------------------------


@pytest.fixture
def people(make_subscriber):
    return {
        "ada": make_subscriber(first_name="Ada", last_name="Lovelace", foreign_id="psid-ada", locale="en-GB"),
        "alan": make_subscriber(first_name="Alan", last_name="Turing", foreign_id="psid-alan", locale="en-US"),
        "grace": make_subscriber(first_name="Grace", last_name="Hopper", foreign_id="psid-grace", locale="fr-FR"),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ada", ["Ada Lovelace"]),
        ("LOVELACE", ["Ada Lovelace"]),
        ("ada lovelace", ["Ada Lovelace"]),
        ("Lovelace Ada", ["Ada Lovelace"]),
        ("ada turing", []),
        ("psid-alan", ["Alan Turing"]),
        ("psid", []),
    ],
)
def test_search_matches_names_together_and_an_exact_foreign_id(signed_in, people, query, expected):
    assert names(signed_in.get(URL, {"q": query})) == expected


def test_search_ignores_case_and_accents_on_both_databases(signed_in, make_subscriber):
    make_subscriber(first_name="Émile", last_name="Zola")
    assert names(signed_in.get(URL, {"q": "émile"})) == ["Émile Zola"]
    assert names(signed_in.get(URL, {"q": "EMILE"})) == ["Émile Zola"]


# Channel, gender, locale, dates ----------------------------------------------------------------------


def test_channel_filter_takes_several_channel_names(signed_in, make_subscriber):
    web, console = Channel.objects.get(name="web"), Channel.objects.get(name="console")
    make_subscriber(first_name="On", last_name="Messenger")
    make_subscriber(first_name="On", last_name="Web", channel=web)
    make_subscriber(first_name="On", last_name="Console", channel=console)
    response = signed_in.get(URL + "?channel=web&channel=console&sort=name")
    assert sorted(names(response)) == ["On Console", "On Web"]


def test_gender_filter_knows_not_provided(signed_in, make_subscriber):
    make_subscriber(first_name="Fay", gender="female", last_name="F")
    make_subscriber(first_name="Nob", gender="", last_name="N")
    assert names(signed_in.get(URL, {"gender": "female"})) == ["Fay F"]
    assert names(signed_in.get(URL, {"gender": "unknown"})) == ["Nob N"]


def test_a_language_matches_all_its_locales(signed_in, people):
    assert sorted(names(signed_in.get(URL, {"locale": "en"}))) == ["Ada Lovelace", "Alan Turing"]
    assert names(signed_in.get(URL, {"locale": "en-gb"})) == ["Ada Lovelace"]


def test_date_ranges_include_both_days(signed_in, make_subscriber):
    day = lambda d: datetime(2026, 3, d, 12, tzinfo=utc)  # noqa: E731
    make_subscriber(first_name="Early", last_name="E", created_at=day(1), updated_at=day(20))
    make_subscriber(first_name="Middle", last_name="M", created_at=day(10), updated_at=day(10))
    make_subscriber(first_name="Late", last_name="L", created_at=day(20), updated_at=day(21))
    in_range = {"created_after": "2026-03-10", "created_before": "2026-03-20", "sort": "created"}
    assert names(signed_in.get(URL, in_range)) == ["Middle M", "Late L"]
    assert names(signed_in.get(URL, {"updated_after": "2026-03-20", "sort": "updated"})) == ["Early E", "Late L"]
    assert names(signed_in.get(URL, {"updated_before": "2026-03-10"})) == ["Middle M"]


# Labels ---------------------------------------------------------------------------------------------------


@pytest.fixture
def labelled_people(make_subscriber, make_label):
    vip, news, beta = make_label("VIP"), make_label("Newsletter"), make_label("Beta testers")
    labelled(make_subscriber(first_name="Both", last_name="VN"), vip, news)
    labelled(make_subscriber(first_name="All", last_name="Three"), vip, news, beta)
    labelled(make_subscriber(first_name="Only", last_name="News"), news)
    labelled(make_subscriber(first_name="Only", last_name="Beta"), beta)
    make_subscriber(first_name="No", last_name="Labels")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label=vip", {"Both VN", "All Three"}),
        ("label=vip&label=newsletter", {"Both VN", "All Three", "Only News"}),
        ("label=vip&label=newsletter&label_mode=any", {"Both VN", "All Three", "Only News"}),
        ("label=vip&label=newsletter&label_mode=all", {"Both VN", "All Three"}),
        ("label=vip&label=newsletter&label=beta_testers&label_mode=all", {"All Three"}),
        ("label=vip&label=newsletter&label_mode=none", {"Only Beta", "No Labels"}),
        ("label=beta_testers&label_mode=none", {"Both VN", "Only News", "No Labels"}),
        ("no_labels=1", {"No Labels"}),
        ("label=vip&label_mode=none&no_labels=1", {"No Labels"}),
        ("label_mode=all", {"Both VN", "All Three", "Only News", "Only Beta", "No Labels"}),
    ],
)
def test_label_filters(signed_in, labelled_people, query, expected):
    response = signed_in.get(f"{URL}?{query}")
    found = names(response)
    assert len(found) == len(set(found)), "a subscriber with several labels must appear once"
    assert set(found) == expected


def test_label_filters_use_exists_not_join_and_distinct(signed_in, labelled_people, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        signed_in.get(f"{URL}?label=vip&label=newsletter&label_mode=all&no_labels=")
    page_query = next(q["sql"] for q in queries if "ORDER BY" in q["sql"] and 'subscriber"."foreign_id' in q["sql"])
    assert page_query.count("EXISTS") == 2
    assert "DISTINCT" not in page_query


def labels_menu_button(response):
    """The Labels filter menu's button (its <summary>) as rendered."""
    start = response.text.index('<summary class="btn btn-outline-secondary">Labels')
    return response.text[start : response.text.index("</summary>", start)]


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", None),
        ("label=vip", "1"),
        ("label=vip&label=newsletter&no_labels=1", "3"),
        ("group=plan", "1"),  # a label group filter shows on the button as label filters do
        ("group=plan&group_mode=none&label=vip", "2"),
        ("group_mode=none", None),  # a mode without its group filters nothing
    ],
)
def test_the_labels_button_counts_its_active_filters_label_group_included(signed_in, labelled_people, query, count):
    from labels.models import LabelGroup

    LabelGroup.objects.create(title="Plan", name="plan")
    button = labels_menu_button(signed_in.get(f"{URL}?{query}"))
    if count is None:
        assert "badge" not in button
    else:
        assert f'<span aria-hidden="true">{count}</span>' in button
        assert f"{count} active filter" in button


def test_the_labels_button_badge_is_translated(client, operator, labelled_people):
    from labels.models import LabelGroup

    LabelGroup.objects.create(title="Plan", name="plan")
    client.force_login(operator)
    response = client.get(f"{URL}?group=plan&label=vip", headers={"accept-language": "fr"})
    assert "2 filtres actifs" in response.text


# Invalid filter values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("label=nope", "There is no label named “nope”; it may have been deleted."),
        ("channel=fax", "There is no channel named “fax”."),
        ("gender=robot", "“robot” is not a gender choice."),
        ("locale=en_US!", "“en_US!” is not a locale"),
        ("label_mode=some", "The label mode can be any, all or none, not “some”."),
        ("no_labels=yes", "“No labels” is switched on with 1, not “yes”."),
        ("created_after=yesterday", "Created from: Enter a valid date."),
        ("created_after=2026-05-02&created_before=2026-05-01", "Created until: The “from” date 2026-05-02 comes after"),
        ("sort=labels", "The table cannot be sorted by “labels”"),
        ("per_page=1000", "Rows per page can be 25, 50 or 100, not “1000”"),
    ],
)
def test_an_invalid_filter_value_is_explained_not_a_500(signed_in, make_subscriber, query, message):
    make_subscriber(first_name="Ada", last_name="Lovelace")
    response = signed_in.get(f"{URL}?{query}")
    assert response.status_code == 200
    assert "Some filters could not be applied" in response.text
    assert message in response.text
    # The valid rest still shows: never a silently empty table.
    assert "Ada Lovelace" in response.text


# Sorting -------------------------------------------------------------------------------------------------


@pytest.fixture
def sortable(make_subscriber):
    web = Channel.objects.get(name="web")
    make_subscriber(
        first_name="Bea",
        last_name="B",
        gender="male",
        locale="fr-FR",
        created_at=datetime(2026, 1, 2, tzinfo=utc),
        updated_at=datetime(2026, 2, 3, tzinfo=utc),
    )
    make_subscriber(
        first_name="Abe",
        last_name="A",
        gender="female",
        locale="en-US",
        channel=web,
        created_at=datetime(2026, 1, 3, tzinfo=utc),
        updated_at=datetime(2026, 2, 1, tzinfo=utc),
    )
    make_subscriber(
        first_name="Cy",
        last_name="C",
        gender="other",
        locale="de-DE",
        created_at=datetime(2026, 1, 1, tzinfo=utc),
        updated_at=datetime(2026, 2, 2, tzinfo=utc),
    )


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["Abe A", "Bea B", "Cy C"]),
        ("-created", ["Abe A", "Bea B", "Cy C"]),
        ("created", ["Cy C", "Bea B", "Abe A"]),
        ("updated", ["Abe A", "Cy C", "Bea B"]),
        ("-updated", ["Bea B", "Cy C", "Abe A"]),
        ("name", ["Abe A", "Bea B", "Cy C"]),
        ("-name", ["Cy C", "Bea B", "Abe A"]),
        ("gender", ["Abe A", "Bea B", "Cy C"]),
        ("-gender", ["Cy C", "Bea B", "Abe A"]),
        ("locale", ["Cy C", "Abe A", "Bea B"]),
        ("-locale", ["Bea B", "Abe A", "Cy C"]),
        ("channel", ["Bea B", "Cy C", "Abe A"]),
        ("-channel", ["Abe A", "Cy C", "Bea B"]),
    ],
)
def test_every_sort(signed_in, sortable, sort, expected):
    assert names(signed_in.get(URL, {"sort": sort} if sort else {})) == expected


def test_equal_sort_keys_fall_back_to_the_primary_key(signed_in, make_subscriber):
    same = datetime(2026, 1, 1, tzinfo=utc)
    first = make_subscriber(first_name="Twin", last_name="One", created_at=same)
    second = make_subscriber(first_name="Twin", last_name="One", created_at=same)
    ids = lambda response: [row.record.pk for row in response.context["table"].paginated_rows]  # noqa: E731
    assert ids(signed_in.get(URL, {"sort": "created"})) == [first.pk, second.pk]
    assert ids(signed_in.get(URL, {"sort": "-created"})) == [second.pk, first.pk]
    assert ids(signed_in.get(URL, {"sort": "name"})) == [first.pk, second.pk]


def test_every_sort_is_backed_by_an_index():
    from subscribers.tables import SubscriberTable

    indexed = {tuple(index.fields) for index in Subscriber._meta.indexes}
    orderable = [c for c in SubscriberTable.base_columns.values() if c.orderable is not False]
    assert len(orderable) == 6
    for column in orderable:
        if column.orderable is not False:
            # A foreign key sorts by its column (channel_id), indexed under the field's name.
            fields = tuple(name.removesuffix("_id") if name != "id" else name for name in column.order_by)
            assert fields in indexed, f"{fields} has no index"


def test_sort_links_keep_the_filters_and_go_back_to_page_one(signed_in, make_subscriber):
    for _ in range(30):
        make_subscriber()
    html = signed_in.get(URL, {"q": "First", "page": "2"}).text
    assert 'href="?q=First&amp;sort=name"' in html


# Pagination ------------------------------------------------------------------------------------------------


@pytest.fixture
def sixty(make_subscriber):
    return [make_subscriber(created_at=datetime(2026, 1, 1, 0, n, tzinfo=utc)) for n in range(60)]


def test_pages_hold_25_rows_by_default_and_per_page_changes_that(signed_in, sixty):
    response = signed_in.get(URL)
    assert len(names(response)) == 25
    assert "1\u201325 of 60 subscribers" in response.text
    assert len(names(signed_in.get(URL, {"per_page": "50"}))) == 50
    third = signed_in.get(URL, {"page": "3"})
    assert len(names(third)) == 10
    assert "51\u201360 of 60 subscribers" in third.text


@pytest.mark.parametrize(
    ("page", "shown", "message"),
    [
        ("0", 1, "There is no page “0”: pages are numbered from 1. Showing page 1."),
        ("-1", 1, "There is no page “-1”"),
        ("two", 1, "There is no page “two”"),
        ("9", 3, "Page 9 is past the end: showing the last page, 3."),
    ],
)
def test_pagination_edges(signed_in, sixty, page, shown, message):
    response = signed_in.get(URL, {"page": page})
    assert response.status_code == 200
    assert response.context["table"].page.number == shown
    assert message in response.text


def test_an_exact_total_is_shown_when_counting_is_cheap(sixty):
    assert count_subscribers(Subscriber.objects.all(), filtered=False) == Total(60, exact=True)


def test_a_large_total_is_rounded_as_an_estimate():
    assert Total(1_234_567, exact=False).rounded == 1_200_000
    assert Total(45_321, exact=False).rounded == 45_000
    assert Total(45_321, exact=True).rounded == 45_321


def test_an_estimated_total_reads_about_one_point_two_million(signed_in, make_subscriber, monkeypatch):
    from subscribers import views

    make_subscriber()
    monkeypatch.setattr(views, "count_subscribers", lambda queryset, filtered: Total(1_234_567, exact=False))
    html = signed_in.get(URL).text
    assert "of about 1.2 million subscribers" in html
    assert f"Pages reach the first {REACHABLE_ROWS:,} subscribers" in html


def test_deep_pages_are_capped_at_the_reachable_rows(signed_in, make_subscriber, monkeypatch):
    from subscribers import views

    make_subscriber()
    monkeypatch.setattr(views, "count_subscribers", lambda queryset, filtered: Total(1_234_567, exact=False))
    response = signed_in.get(URL, {"page": "49000"})
    last = REACHABLE_ROWS // 25
    assert f"Page 49000 is past the end: showing the last page, {last}." in response.text


def test_the_planner_estimates_a_big_filtered_postgresql_count(make_subscriber, monkeypatch):
    from django.db import connection

    from subscribers import queries

    if connection.vendor != "postgresql":
        pytest.skip("Estimates are PostgreSQL's.")
    monkeypatch.setattr(queries, "REACHABLE_ROWS", 2)
    for _ in range(3):
        make_subscriber()
    total = count_subscribers(Subscriber.objects.filter(first_name__startswith="First"), filtered=True)
    assert total.exact is False
    assert total.value >= 3


# htmx ------------------------------------------------------------------------------------------------------


def test_htmx_returns_the_table_only(signed_in, make_subscriber):
    make_subscriber(first_name="Ada", last_name="Lovelace")
    response = signed_in.get(URL, {"sort": "name"}, headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<section id="subscriber-results"')
    assert "<html" not in response.text
    assert "Ada Lovelace" in response.text
    # The filter form's hidden sort follows the table's.
    assert 'id="kept-params" hx-swap-oob="true"' in response.text
    assert '<input type="hidden" name="sort" value="name">' in response.text
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(signed_in, make_subscriber):
    response = signed_in.get(URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.text


def test_links_have_real_hrefs_and_htmx_attributes(signed_in, sixty):
    html = signed_in.get(URL).text
    assert 'href="?page=2" hx-get="?page=2" hx-target="#subscriber-results"' in html
    assert 'hx-push-url="true"' in html


# Query counts ----------------------------------------------------------------------------------------------


@pytest.fixture
def crowd(make_subscriber, make_label):
    def crowd(rows, labels_per_row):
        labels = [make_label(f"Label {n}") for n in range(labels_per_row)]
        subscribers = [make_subscriber() for _ in range(rows)]
        add_labels(Subscriber.objects.all(), labels)
        return subscribers

    return crowd


@pytest.mark.parametrize(("rows", "labels_per_row"), [(5, 0), (5, 10), (100, 0), (100, 10)])
def test_the_full_page_runs_the_same_queries_whatever_the_rows_and_labels(
    signed_in, crowd, rows, labels_per_row, django_assert_num_queries
):
    crowd(rows, labels_per_row)
    # A first visit, caches empty (the visits after it read neither the permissions nor the label list:
    # tests/test_page_caches.py): 1 session, 2 user, 3 user's group permissions, 4 user's own permissions,
    # 5 bounded count, 6 channels for the filter, 7 labels for the filter,
    # 8 the page of subscribers with their channel, 9 their labels, 10 label groups for the filter.
    with django_assert_num_queries(10):
        response = signed_in.get(URL, {"per_page": "100"})
    assert len(names(response)) == rows


@pytest.mark.parametrize(("rows", "labels_per_row"), [(5, 0), (5, 10), (100, 0), (100, 10)])
def test_the_htmx_partial_runs_the_same_queries_whatever_the_rows_and_labels(
    signed_in, crowd, rows, labels_per_row, django_assert_num_queries
):
    crowd(rows, labels_per_row)
    # A first visit, permissions not cached yet: 1 session, 2 user, 3 group permissions, 4 own permissions,
    # 5 bounded count, 6 the page of subscribers with their channel, 7 their labels.
    with django_assert_num_queries(7):
        response = signed_in.get(URL, {"per_page": "100"}, headers={"HX-Request": "true"})
    assert len(names(response)) == rows


def test_a_label_filter_adds_one_query_to_look_the_labels_up(signed_in, crowd, django_assert_num_queries):
    crowd(30, 3)
    # As the full page, plus 1 to check the label names of the filter. On PostgreSQL the filtered count runs
    # in a time box (subscribers.queries._bounded_count): inside the test's transaction that is a savepoint,
    # SET LOCAL statement_timeout, the count, the timeout put back and the savepoint released: 4 more.
    with django_assert_num_queries(8 + (4 if connection.vendor == "postgresql" else 0)):
        signed_in.get(URL, {"label": "label_0"}, headers={"HX-Request": "true"})
