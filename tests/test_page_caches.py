"""What the pages keep between requests (issue 16): the filter's label list, the users' permissions,
and the lean table rows, the time-boxed count and the filter-first sort of the Subscribers page."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from labels.actions import create_label, delete_label, update_label
from labels.forms import LabelForm
from labels.models import Label
from subscribers import queries as subscriber_queries
from subscribers import views as subscriber_views
from subscribers.actions import add_labels
from subscribers.models import Subscriber
from subscribers.queries import _bounded_count, subscribers_for_table
from subscribers.tables import SubscriberTable

pytestmark = pytest.mark.django_db

URL = reverse("subscribers:list")


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


def filter_titles(response):
    """The titles of the label filter's checkboxes, in order."""
    html = response.text
    start = html.index('id="filter-label-choices"')
    section = html[start : html.index("</fieldset>", start)]
    return [part.split("</span>")[0] for part in section.split('<span class="label-chip')[1:]]


def chip_titles(response):
    return [title.split(">", 1)[1] for title in filter_titles(response)]


# The label list ---------------------------------------------------------------------------------------------


def test_the_filter_lists_a_label_created_renamed_and_deleted_through_the_actions(signed_in, label_manager):
    create_label(LabelForm({"title": "VIP", "name": "vip", "color": "green"}))
    assert chip_titles(signed_in.get(URL)) == ["VIP"]  # now cached

    created = create_label(LabelForm({"title": "Archived", "name": "archived", "color": "gray"}))
    assert chip_titles(signed_in.get(URL)) == ["Archived", "VIP"]

    update_label(LabelForm({"title": "Zebra", "name": "archived", "color": "gray"}, instance=created))
    assert chip_titles(signed_in.get(URL)) == ["VIP", "Zebra"]

    delete_label(Label.objects.get(name="vip"), by=label_manager)
    assert chip_titles(signed_in.get(URL)) == ["Zebra"]


def test_the_filter_keeps_the_chosen_labels_ticked_and_writes_what_the_widget_wrote(signed_in, make_label):
    make_label("VIP", name="vip")
    make_label("News & offers", name="news")
    html = signed_in.get(URL, {"label": "vip"}).text
    assert (
        '<div class="form-check" data-filter-text="vip vip"><input type="checkbox" name="label" value="vip"'
        ' class="form-check-input" id="id_label_1" checked><label class="form-check-label" for="id_label_1">'
        '<span class="label-chip label-chip--gray">VIP</span></label></div>'
    ) in html
    assert 'data-filter-text="news &amp; offers news"' in html
    assert 'value="news" class="form-check-input" id="id_label_0"><label' in html  # not ticked


def test_an_unknown_label_marks_the_checkboxes_invalid(signed_in, make_label):
    make_label("VIP", name="vip")
    html = signed_in.get(URL, {"label": "gone"}).text
    assert 'id="id_label_0" aria-invalid="true">' in html
    assert "There is no label named “gone”" in html


def test_the_page_reads_the_label_list_once_until_a_label_changes(
    signed_in, make_label, make_subscriber, django_assert_num_queries
):
    add_labels(Subscriber.objects.filter(pk=make_subscriber().pk), [make_label("VIP", name="vip")])
    make_subscriber()
    signed_in.get(URL)  # fills the caches: the label list, the operator's permissions
    # 1 session, 2 user, 3 bounded count, 4 channels for the filter, 5 label groups for the filter,
    # 6 the page of subscribers with their channel, 7 their labels. No label list, no permissions: cached.
    with django_assert_num_queries(7):
        signed_in.get(URL)


# Permissions ------------------------------------------------------------------------------------------------


def test_permissions_are_read_once_then_come_from_the_cache(signed_in, django_assert_num_queries):
    signed_in.get(URL, headers={"HX-Request": "true"})
    # 1 session, 2 user, 3 bounded count (the page is empty: no rows, no labels to fetch).
    with django_assert_num_queries(3):
        signed_in.get(URL, headers={"HX-Request": "true"})


def test_leaving_the_group_takes_the_page_away_at_the_next_request(signed_in, operator):
    assert signed_in.get(URL).status_code == 200
    operator.groups.remove(Group.objects.get(name="Operators"))
    assert signed_in.get(URL).status_code == 403
    operator.groups.add(Group.objects.get(name="Operators"))
    assert signed_in.get(URL).status_code == 200


def test_a_permission_taken_from_the_group_is_refused_at_the_next_request(signed_in):
    assert signed_in.get(URL).status_code == 200
    operators = Group.objects.get(name="Operators")
    view = Permission.objects.get(codename="view_subscriber")
    operators.permissions.remove(view)
    assert signed_in.get(URL).status_code == 403
    operators.permissions.add(view)
    assert signed_in.get(URL).status_code == 200


def test_a_permission_given_to_the_user_counts_at_the_next_request(client, django_user_model):
    user = django_user_model.objects.create_user("newcomer", password="x")
    client.force_login(user)
    assert client.get(URL).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    assert client.get(URL).status_code == 200


def test_a_new_user_with_a_deleted_users_id_does_not_inherit_the_cached_rights(client, operator, django_user_model):
    client.force_login(operator)
    assert client.get(URL).status_code == 200
    pk = operator.pk
    operator.delete()
    newcomer = django_user_model.objects.create_user("newcomer", password="x", id=pk)
    client.force_login(newcomer)
    assert client.get(URL).status_code == 403


def test_a_deactivated_user_is_refused_despite_cached_permissions(signed_in, operator):
    assert signed_in.get(URL).status_code == 200
    operator.is_active = False
    operator.save()
    assert signed_in.get(URL).status_code in (302, 403)  # logged out: the login page, or refused


# Table rows -------------------------------------------------------------------------------------------------


def test_the_lean_rows_render_each_cell_as_django_tables2_does(make_subscriber, make_label):
    vip, news = make_label("VIP"), make_label("News")
    people = [make_subscriber(first_name="Ada", last_name="Lovelace", gender="female"), make_subscriber(gender="")]
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [vip, news])

    def table():
        return SubscriberTable(subscribers_for_table().order_by("pk"), can_change_labels=True, back_url="/back/")

    expected = [
        f"<tr {row.attrs.as_html()}>"
        + "".join(f"<td {column.attrs['td'].as_html()}>{cell}</td>" for column, cell in row.items())
        + "</tr>"
        for row in table().rows
    ]
    assert list(table().rows_html()) == expected
    ada, other = sorted(expected, key=lambda row: "Ada Lovelace" not in row)
    assert "VIP" in ada and "News" in ada and "Female" in ada
    assert '<td class="cell-gender d-md-table-cell d-none">—</td>' in other  # no gender: the column's default


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_tables_manage_labels_button_is_the_dialogs_partial(make_subscriber, language):
    person = make_subscriber(first_name="Zoë", last_name="<O'Brien>")
    table = SubscriberTable([person], can_change_labels=True, back_url="/subscribers/?label=vip&q=a b")
    with translation.override(language):
        written = table.render_actions(person)
        partial = render_to_string(
            "subscribers/labels.html#open_button", {"subscriber": person, "back_url": table.back_url, "compact": True}
        )
    assert " ".join(written.split()) == " ".join(partial.split())


# The Subscribers page's SQL ---------------------------------------------------------------------------------


def test_a_filter_matching_few_sorts_them_in_the_same_order(signed_in, make_subscriber):
    now = timezone.now()
    for days in (1, 5, 3, 2, 4):
        person = make_subscriber(first_name=f"P{days}")
        Subscriber.objects.filter(pk=person.pk).update(created_at=now, updated_at=now - timedelta(days=days))
    make_subscriber(first_name="Old")
    Subscriber.objects.filter(first_name="Old").update(created_at=now - timedelta(days=30))
    since = (now - timedelta(days=1)).date().isoformat()
    for sort, expected in [("updated", ["P5", "P4", "P3", "P2", "P1"]), ("-updated", ["P1", "P2", "P3", "P4", "P5"])]:
        response = signed_in.get(URL, {"created_after": since, "sort": sort})
        assert [row.record.first_name for row in response.context["table"].paginated_rows] == expected
        assert "COALESCE" in str(response.context["table"].data.data.query)


def test_a_filter_matching_many_walks_the_sort_index_even_when_counted_exactly(signed_in, make_subscriber, monkeypatch):
    # SQLite counts every match exactly: past REACHABLE_ROWS they are many enough to find by walking the index.
    monkeypatch.setattr(subscriber_queries, "REACHABLE_ROWS", 3)
    monkeypatch.setattr(subscriber_views, "REACHABLE_ROWS", 3)
    for number in range(5):
        make_subscriber(first_name=f"P{number}")
    since = (timezone.now() - timedelta(days=1)).date().isoformat()

    response = signed_in.get(URL, {"created_after": since, "sort": "updated"})

    assert response.context["table"].paginated_rows  # (paging reaches REACHABLE_ROWS rows)
    assert "COALESCE" not in str(response.context["table"].data.data.query)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="The count's time box is PostgreSQL's.")
def test_a_filtered_count_past_its_time_box_gives_way_and_leaves_the_transaction_usable(make_subscriber):
    make_subscriber()
    slow = Subscriber.objects.extra(where=["pg_sleep(0.1) IS NOT NULL"])  # 100 ms a row, past the 25 ms box
    assert _bounded_count(slow, timed=True) is None
    assert _bounded_count(slow, timed=False) == 1  # the time limit was put back: the same count now finishes
