import re

import pytest
from django.urls import reverse

from subscribers.actions import add_labels
from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db

URL = reverse("labels:list")


@pytest.fixture
def labelled(make_label, make_subscriber):
    """VIP on three subscribers, Active users on one, Support on none."""
    people = [make_subscriber() for _ in range(3)]
    vip = make_label("VIP", color="purple", description="Our best customers")
    active = make_label("Active users")
    make_label("Support")
    add_labels(Subscriber.objects.all(), [vip])
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [active])
    return vip


def _titles(response):
    return re.findall(r'<span class="label-chip[^"]*">([^<]+)</span>', response.text)


def test_it_lists_labels_with_chip_name_description_and_counts(client, operator, labelled):
    client.force_login(operator)
    html = client.get(URL).text
    assert '<span class="label-chip label-chip--purple">VIP</span>' in html
    assert "<code>vip</code>" in html
    assert "Our best customers" in html
    assert f'href="{reverse("subscribers:list")}?label=vip"' in html
    assert re.search(r'aria-label="Subscribers with the label VIP">3</a>', html)
    assert re.search(r'aria-label="Subscribers with the label Support">0</a>', html)


def test_it_sorts_by_title_by_default_and_by_subscribers_on_request(client, operator, labelled):
    client.force_login(operator)
    assert _titles(client.get(URL)) == ["Active users", "Support", "VIP"]
    assert _titles(client.get(URL, {"sort": "-subscriber_count"})) == ["VIP", "Active users", "Support"]
    assert _titles(client.get(URL, {"sort": "name"})) == ["Active users", "Support", "VIP"]
    assert _titles(client.get(URL, {"sort": "-created_at"})) == ["Support", "Active users", "VIP"]


def test_the_headers_link_to_the_sorts(client, operator, labelled):
    client.force_login(operator)
    html = client.get(URL).text
    for key in ["title", "name", "subscriber_count", "created_at", "updated_at"]:
        assert f'href="?sort={key}"' in html or f'href="?sort=-{key}"' in html
    assert "sort=description" not in html


def test_it_searches_titles_and_names(client, operator, labelled):
    client.force_login(operator)
    assert _titles(client.get(URL, {"q": "vi"})) == ["VIP"]
    assert _titles(client.get(URL, {"q": "active_"})) == ["Active users"]
    response = client.get(URL, {"q": "nothing like this"})
    assert _titles(response) == []
    assert "No labels match." in response.text


def test_an_empty_page_says_there_are_no_labels_yet(client, operator):
    client.force_login(operator)
    assert "No labels yet." in client.get(URL).text


def test_htmx_requests_for_the_table_get_the_table_only(client, operator, labelled):
    client.force_login(operator)
    response = client.get(URL, {"sort": "name"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="labels-table")
    assert response.text.lstrip().startswith('<div id="labels-table"')
    assert "<html" not in response.text
    assert _titles(response) == ["Active users", "Support", "VIP"]


def test_operators_see_no_add_edit_or_delete(client, operator, labelled):
    client.force_login(operator)
    html = client.get(URL).text
    assert reverse("labels:add") not in html
    assert reverse("labels:edit", args=[labelled.pk]) not in html
    assert reverse("labels:delete", args=[labelled.pk]) not in html


def test_label_managers_see_add_edit_and_delete(client, label_manager, labelled):
    client.force_login(label_manager)
    html = client.get(URL).text
    assert f'hx-get="{reverse("labels:add")}"' in html
    assert 'aria-label="Edit “VIP”"' in html
    assert 'aria-label="Delete “VIP”"' in html


@pytest.mark.parametrize("how_many", [3, 30])
def test_the_page_runs_the_same_queries_whatever_the_number_of_labels(
    client, label_manager, make_label, make_subscriber, how_many, django_assert_num_queries
):
    labels = [make_label(f"Label {n}") for n in range(how_many)]
    add_labels(Subscriber.objects.filter(pk__in=[make_subscriber().pk for _ in range(3)]), labels)
    client.force_login(label_manager)
    # 1. the session, 2. the user, 3. the user's own permissions, 4. those of the user's groups,
    # 5. COUNT the labels for the paginator, 6. the page of labels,
    # 7. their subscriber counts (one GROUP BY over the assignments of the page's labels),
    # 8. the label groups, for the group filter (each label's group comes with the page of labels)
    with django_assert_num_queries(8):
        response = client.get(URL)
    assert response.text.count('aria-label="Subscribers with the label') == how_many
    assert response.text.count('aria-label="Subscribers with the label Label 1">3</a>') == 1


@pytest.mark.parametrize("how_many", [3, 30])
def test_sorting_on_subscribers_counts_in_the_page_query(
    client, operator, make_label, make_subscriber, how_many, django_assert_num_queries
):
    labels = [make_label(f"Label {n}") for n in range(how_many)]
    add_labels(Subscriber.objects.filter(pk__in=[make_subscriber().pk for _ in range(3)]), labels[:2])
    client.force_login(operator)
    # 1. the session, 2. the user, 3. the user's own permissions, 4. those of the user's groups,
    # 5. COUNT the labels (the counts left out), 6. the page of labels sorted on their subscriber counts,
    # 7. the label groups, for the group filter
    with django_assert_num_queries(7) as captured:
        response = client.get(URL, {"sort": "-subscriber_count"})
    assert "subscriberlabel" not in captured.captured_queries[4]["sql"]
    # Equal counts: the primary key breaks the tie, in the same direction.
    assert _titles(response)[:2] == ["Label 1", "Label 0"]


@pytest.mark.parametrize("params", [{"page": "999"}, {"page": "abc"}, {"sort": "nonsense"}, {"sort": "description"}])
def test_odd_parameters_still_show_the_labels(client, operator, labelled, params):
    client.force_login(operator)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert _titles(response) == ["Active users", "Support", "VIP"]
