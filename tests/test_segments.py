"""Saved segments (issue 14): save a filter under a name, open it, rename, update, delete, use it."""

import pytest
from django.urls import reverse

from broadcasts.models import Broadcast
from segments.actions import SegmentInUse, delete_segment
from segments.models import Segment, normalise_query
from subscribers.actions import add_labels
from subscribers.models import LabelOperation, Subscriber

pytestmark = pytest.mark.django_db

LIST = reverse("subscribers:list")
SEGMENTS = reverse("segments:list")
ADD = reverse("segments:add")


@pytest.fixture
def manager(client, label_manager):
    client.force_login(label_manager)
    return client


@pytest.fixture
def people(make_subscriber, make_label):
    vip, news = make_label("VIP", name="vip"), make_label("News", name="news")
    ada = make_subscriber(first_name="Ada", locale="fr-FR")
    bob = make_subscriber(first_name="Bob", locale="fr-BE")
    cy = make_subscriber(first_name="Cy", locale="en-US")
    make_subscriber(first_name="Dee", locale="fr-FR")
    add_labels(Subscriber.objects.filter(pk__in=[ada.pk, bob.pk, cy.pk]), [vip])
    add_labels(Subscriber.objects.filter(pk=ada.pk), [news])
    return {"vip": vip, "news": news, "ada": ada, "bob": bob, "cy": cy}


def first_names(response):
    return sorted(row.record.first_name for row in response.context["table"].paginated_rows)


def save(client, filters, name="French VIPs", **extra):
    return client.post(ADD, {"name": name, "filters": filters, **extra})


# Saving and opening -------------------------------------------------------------------------------------


def test_it_saves_the_filter_normalised_and_opens_on_its_page(manager, people, label_manager):
    response = save(manager, "page=2&sort=-name&label=vip&locale=fr&q=&label_mode=any&per_page=50")
    segment = Segment.objects.get()
    assert segment.query == "locale=fr&label=vip"  # its own filters only: no page, sort, empty values or default mode
    assert segment.created_by == label_manager
    assert response.status_code == 302 and response.url == reverse("segments:open", args=[segment.pk])


def test_round_trip_the_segment_shows_the_same_rows_as_the_filter(manager, people):
    original = manager.get(LIST, {"label": "vip", "locale": "fr"})
    save(manager, original.context["submitted_filters"])
    opened = manager.get(Segment.objects.get().get_absolute_url())
    assert first_names(opened) == first_names(original) == ["Ada", "Bob"]
    html = opened.text
    assert '<h1 tabindex="-1">French VIPs</h1>' in html
    assert opened.context["total"].value == 2


def test_the_segment_is_evaluated_when_used(manager, people, make_subscriber):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    eve = make_subscriber(first_name="Eve")
    add_labels(Subscriber.objects.filter(pk=eve.pk), [people["vip"]])
    assert first_names(manager.get(segment.get_absolute_url())) == ["Ada", "Bob", "Cy", "Eve"]


def test_htmx_save_opens_the_segment_page(manager, people):
    response = manager.post(ADD, {"name": "VIP", "filters": "label=vip"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == Segment.objects.get().get_absolute_url()


def test_a_name_is_unique_whatever_its_case(manager, people):
    save(manager, "label=vip", name="VIP")
    response = save(manager, "label=news", name="  vip ")
    assert response.status_code == 422
    assert "There is already a segment named “vip”." in response.text
    assert Segment.objects.count() == 1


def test_a_filter_that_does_not_apply_is_not_saved(manager, people):
    response = save(manager, "label=ghost")
    assert response.status_code == 422
    assert "There is no label named “ghost”" in response.text
    assert not Segment.objects.exists()


def test_the_dialog_says_so_before_typing_a_name(manager, people):
    response = manager.get(ADD, {"filters": "created_after=2026-02-01&created_before=2026-01-01"})
    assert response.status_code == 200
    assert "The filter cannot be saved" in response.text


def test_the_subscribers_page_offers_save_as_segment_to_managers_only(client, operator, label_manager, people):
    client.force_login(operator)
    html = client.get(LIST, {"label": "vip"}).text
    assert "Save as segment…" not in html and 'hx-get="/segments/menu/?place=picker"' in html
    client.force_login(label_manager)
    html = client.get(LIST, {"label": "vip"}).text
    assert f"{ADD}?filters=label%3Dvip" in html


# Editing on the page, renaming, deleting ------------------------------------------------------------------


def test_changed_filters_on_the_segment_page_update_the_segment(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    edited = manager.get(segment.get_absolute_url(), {"label": "vip", "locale": "en", "edit": "1"})
    assert first_names(edited) == ["Cy"]
    assert edited.context["segment_changed"]
    assert edited.context["submitted_filters"] == "locale=en&label=vip"
    response = manager.post(reverse("segments:update", args=[segment.pk]), {"filters": "locale=en&label=vip&edit=1"})
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.query == "locale=en&label=vip"
    assert first_names(manager.get(segment.get_absolute_url())) == ["Cy"]


def test_an_edit_that_clears_every_filter_shows_everyone(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    assert len(first_names(manager.get(segment.get_absolute_url(), {"edit": "1"}))) == 4


def test_the_unchanged_segment_page_hands_its_filter_and_itself_on(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    response = manager.get(segment.get_absolute_url(), {"sort": "-name", "page": "1"})
    assert response.context["submitted_filters"] == f"label=vip&segment={segment.pk}"
    assert not response.context["segment_changed"]


def test_rename_changes_the_name_and_description(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    response = manager.post(
        reverse("segments:edit", args=[segment.pk]), {"name": "Best", "description": "Our best people"}
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.description, segment.query) == ("Best", "Our best people", "label=vip")


def test_delete_after_confirmation(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    url = reverse("segments:delete", args=[segment.pk])
    assert "Delete the segment “French VIPs”?" in manager.get(url).text
    assert manager.post(url).status_code == 302
    assert not Segment.objects.exists()


def test_delete_is_refused_while_a_scheduled_broadcast_uses_it(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    broadcast = Broadcast.objects.create(
        title="Sale", text="Hi", audience={"filters": segment.filters()}, segment=segment, status="scheduled"
    )
    draft = Broadcast.objects.create(title="Later", text="Hi", audience={"filters": segment.filters()}, segment=segment)
    url = reverse("segments:delete", args=[segment.pk])
    assert "cannot be deleted" in manager.get(url).text
    response = manager.post(url)
    assert response.status_code == 422
    assert "Sale" in response.text and "Later" not in response.text
    assert Segment.objects.exists()
    with pytest.raises(SegmentInUse):
        delete_segment(segment)
    broadcast.status = "done"
    broadcast.save()
    delete_segment(segment)
    draft.refresh_from_db()
    assert draft.segment is None and draft.audience == {"filters": {"label": ["vip"]}}


def test_a_deleted_segment_is_a_clear_404(manager):
    response = manager.get(reverse("segments:open", args=[999]))
    assert response.status_code == 404
    response = manager.get(reverse("segments:edit", args=[999]), headers={"HX-Request": "true"})
    assert response.status_code == 404 and "no longer exists" in response.text


# Used as a selection -------------------------------------------------------------------------------------


def test_a_segment_is_the_selection_of_a_bulk_change(manager, people, make_label):
    save(manager, "label=vip&locale=fr")
    segment = Segment.objects.get()
    filters = manager.get(segment.get_absolute_url()).context["submitted_filters"]
    gold = make_label("Gold", name="gold")
    response = manager.post(
        reverse("subscribers:bulk_labels"),
        {"kind": "add", "labels": [gold.pk], "filters": filters, "all_matching": "1", "confirm": "1"},
    )
    assert response.status_code == 302
    assert sorted(gold.subscribers.values_list("first_name", flat=True)) == ["Ada", "Bob"]
    assert LabelOperation.objects.latest("pk").filters["filters"] == {"locale": ["fr"], "label": ["vip"]}


def test_a_segment_is_the_selection_of_an_export(manager, people):
    save(manager, "label=vip&locale=fr")
    segment = Segment.objects.get()
    filters = manager.get(segment.get_absolute_url()).context["submitted_filters"]
    response = manager.get(reverse("subscribers:export_download"), {"filters": filters})
    body = b"".join(response.streaming_content).decode()
    assert "Ada" in body and "Bob" in body and "Cy" not in body and "Dee" not in body


def test_the_segments_page_links_bulk_changes_and_export_to_the_segment(manager, people):
    save(manager, "label=vip")
    html = manager.get(SEGMENTS).text
    assert f"{reverse('subscribers:export')}?filters=label%3Dvip" in html
    assert f"{reverse('subscribers:bulk_labels')}?kind=add&amp;all_matching=1&amp;filters=label%3Dvip" in html


# The Segments page, the menu, the count ------------------------------------------------------------------


def test_the_segments_page_describes_each_filter_in_words(manager, people):
    save(manager, "label=vip&label=news&label_mode=all&channel=messenger&gender=unknown&created_after=2026-01-01")
    save(manager, "", name="Everyone")
    html = manager.get(SEGMENTS).text
    assert (
        "Channel: Facebook Messenger · Gender: Not provided · All of these labels: News, VIP · Created from: 2026-01-01"
        in html
    )
    assert "All subscribers" in html


def test_the_count_is_live(manager, people):
    save(manager, "label=vip")
    segment = Segment.objects.get()
    assert "3 subscribers" in manager.get(reverse("segments:count", args=[segment.pk])).text


def test_the_count_of_a_segment_whose_label_was_deleted_says_why(manager, people):
    save(manager, "label=news")
    segment = Segment.objects.get()
    people["news"].delete()
    html = manager.get(reverse("segments:count", args=[segment.pk])).text
    assert "There is no label named “news”" in html
    assert "News (deleted)" not in html and "news (deleted)" in manager.get(SEGMENTS).text


def test_the_menu_lists_a_few_then_all_segments(manager, people):
    for number in range(7):
        Segment.objects.create(name=f"Segment {number}", query="label=vip")
    html = manager.get(reverse("segments:menu")).text
    assert html.count('class="nav-link nav-link-sub"') == 6
    assert "Segment 4" in html and "Segment 5" not in html and "All segments" in html
    assert manager.get(reverse("segments:menu"), {"place": "picker"}).text.count("Segment ") == 7


def test_hostile_names_are_shown_as_text(manager, people):
    save(manager, "q=%3Cb%3E", name="<script>alert(1)</script>", description="<img src=x onerror=alert(2)>")
    segment = Segment.objects.get()
    for url in (
        SEGMENTS,
        reverse("segments:menu"),
        segment.get_absolute_url(),
        reverse("segments:delete", args=[segment.pk]),
    ):
        html = manager.get(url).text
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Search: “&lt;b&gt;”" in manager.get(SEGMENTS).text


def test_normalise_keeps_only_the_filters_in_a_stable_order():
    from django.http import QueryDict

    assert (
        normalise_query(QueryDict("label=b&label=a&label=b&x=1&label_mode=all&q=+ada+"))
        == "q=ada&label=a&label=b&label_mode=all"
    )
    assert normalise_query(QueryDict("label_mode=none")) == ""


# Permissions and query counts ----------------------------------------------------------------------------


def test_operators_view_and_use_but_do_not_manage(client, operator, people):
    segment = Segment.objects.create(name="VIP", query="label=vip")
    client.force_login(operator)
    assert client.get(SEGMENTS).status_code == 200
    assert first_names(client.get(segment.get_absolute_url())) == ["Ada", "Bob", "Cy"]
    assert "Rename…" not in client.get(SEGMENTS).text
    assert client.post(ADD, {"name": "X", "filters": ""}).status_code == 403
    assert client.post(reverse("segments:update", args=[segment.pk]), {"filters": ""}).status_code == 403
    assert client.post(reverse("segments:delete", args=[segment.pk])).status_code == 403
    assert Segment.objects.get().query == "label=vip"


def test_the_segments_page_runs_the_same_queries_whatever_the_segments(manager, people, django_assert_num_queries):
    for number in range(12):
        Segment.objects.create(name=f"Segment {number}", query="label=vip&channel=messenger&label=news")
    # 1 session, 2 user, 3 group permissions, 4 own permissions, 5 the segments with who saved them,
    # 6 the labels they name, 7 the channels they name. Counts load row by row (segments:count).
    with django_assert_num_queries(7):
        response = manager.get(SEGMENTS)
    assert response.text.count("Segment ") >= 12


def test_a_segment_page_costs_one_query_more_than_the_subscribers_page(manager, people, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    segment = Segment.objects.create(name="VIP", query="label=vip")
    manager.get(segment.get_absolute_url())  # warm up: the first request of a connection sets it up
    # The Subscribers page with the same filter (counted exactly in tests/test_subscriber_list.py)...
    with CaptureQueriesContext(connection) as page:
        manager.get(LIST, {"label": "vip"})
    # ... plus 1: the segment.
    with django_assert_num_queries(len(page) + 1):
        response = manager.get(segment.get_absolute_url())
    assert first_names(response) == ["Ada", "Bob", "Cy"]
    # The table alone (htmx), the segment's filters changed on its page: the same.
    with CaptureQueriesContext(connection) as page:
        manager.get(LIST, {"label": "vip", "locale": "fr"}, headers={"HX-Request": "true"})
    with django_assert_num_queries(len(page) + 1):
        manager.get(
            segment.get_absolute_url(), {"label": "vip", "locale": "fr", "edit": "1"}, headers={"HX-Request": "true"}
        )


# As a broadcast's audience -------------------------------------------------------------------------------


@pytest.fixture
def broadcaster(client, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("bea", password="password")
    user.groups.add(*Group.objects.filter(name__in=["Broadcasters", "Operators"]))
    client.force_login(user)
    return client


def _compose(**overrides):
    data = {
        "title": "Sale",
        "text": "Hi",
        "message_tag": "",
        "quick_replies_text": "",
        "last_interaction_hours": "",
        "variant-TOTAL_FORMS": "0",
        "variant-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_a_broadcast_to_a_segment_records_the_segment_and_sends_to_its_filter_when_started(broadcaster, people):
    from broadcasts import actions

    segment = Segment.objects.create(name="VIP", query="label=vip")
    page = broadcaster.get(reverse("broadcasts:add"), {"label": "vip", "segment": segment.pk})
    assert "Segment “VIP”" in page.text
    broadcaster.post(reverse("broadcasts:add"), _compose(label=["vip"], segment=str(segment.pk)))
    broadcast = Broadcast.objects.get()
    assert broadcast.segment == segment
    segment.query = "locale=fr&label=vip"  # edited after the draft was written: read when sending starts
    segment.save()
    actions.start_broadcast(broadcast, by=None)
    broadcast = actions.run_broadcast_now(broadcast.pk, sleep=lambda seconds: None)
    assert broadcast.audience == {"filters": {"locale": ["fr"], "label": ["vip"]}}
    assert broadcast.total_count == 2


def test_a_changed_audience_is_no_longer_the_segment(broadcaster, people):
    segment = Segment.objects.create(name="VIP", query="label=vip")
    broadcaster.post(reverse("broadcasts:add"), _compose(label=["vip"], locale="fr", segment=str(segment.pk)))
    assert Broadcast.objects.get().segment is None


def test_the_segment_page_broadcasts_to_the_segment(broadcaster, people):
    segment = Segment.objects.create(name="VIP", query="label=vip")
    html = broadcaster.get(segment.get_absolute_url()).text
    assert f'href="{reverse("broadcasts:add")}?label=vip&amp;segment={segment.pk}"' in html


# API -----------------------------------------------------------------------------------------------------


def test_the_api_lists_segments(api_client, people):
    Segment.objects.create(name="VIP", description="Best", query="label=vip")
    Segment.objects.create(name="all", query="")
    body = api_client.get("/api/v1/segments").json()
    assert [(s["name"], s["description"], s["filter"]) for s in body] == [("all", "", ""), ("VIP", "Best", "label=vip")]


def test_the_api_lists_a_segments_subscribers_by_name(api_client, people):
    Segment.objects.create(name="French VIPs", query="label=vip&locale=fr")
    body = api_client.get("/api/v1/subscribers", {"segment": "french vips"}).json()
    assert sorted(item["first_name"] for item in body["items"]) == ["Ada", "Bob"]


def test_other_api_filters_narrow_the_segment(api_client, people):
    Segment.objects.create(name="VIP", query="label=vip")
    body = api_client.get("/api/v1/subscribers", {"segment": "VIP", "label": "news"}).json()
    assert [item["first_name"] for item in body["items"]] == ["Ada"]
    body = api_client.get("/api/v1/subscribers", {"segment": "VIP", "locale": "en"}).json()
    assert [item["first_name"] for item in body["items"]] == ["Cy"]


def test_the_api_pages_through_a_segment_by_id(api_client, people, make_subscriber):
    Segment.objects.create(name="VIP", query="label=vip")
    first = api_client.get("/api/v1/subscribers", {"segment": "VIP", "limit": 2}).json()
    rest = api_client.get("/api/v1/subscribers", {"segment": "VIP", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["first_name"] for i in first["items"] + rest["items"]] == ["Ada", "Bob", "Cy"]
    assert rest["next_cursor"] is None


def test_an_unknown_segment_is_a_400_naming_it(api_client, people):
    response = api_client.get("/api/v1/subscribers", {"segment": "<Ghost>"})
    assert response.status_code == 400
    assert response.json() == {"detail": "There is no segment named “<Ghost>”.", "unknown": ["<Ghost>"]}


def test_a_segment_whose_filter_no_longer_applies_is_a_clear_error(api_client, people):
    Segment.objects.create(name="News", query="label=news")
    people["news"].delete()
    response = api_client.get("/api/v1/subscribers", {"segment": "News"})
    assert response.status_code == 422
    assert "There is no label named “news”" in response.json()["detail"][0]["msg"]


def test_the_segment_pages_in_french_have_no_english_left(client, admin_user, people):
    from tests.test_i18n import _english_left

    segment = Segment.objects.create(name="Fidèles", description="Clients fidèles", query="label=vip&locale=fr")
    Broadcast.objects.create(title="Soldes", text="Bonjour", segment=segment, status="scheduled")
    client.force_login(admin_user)
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    pages = [
        client.get(SEGMENTS, headers=french),
        client.get(reverse("segments:menu"), headers=french),
        client.get(reverse("segments:menu"), {"place": "picker"}, headers=french),
        client.get(segment.get_absolute_url(), headers=french),
        client.get(segment.get_absolute_url(), {"edit": "1", "label": "vip"}, headers=french),
        client.get(reverse("segments:count", args=[segment.pk]), headers=french),
        client.get(ADD, {"filters": "label=vip"}, headers={**french, "HX-Request": "true"}),
        client.post(ADD, {"name": "fidèles", "filters": "label=vip"}, headers={**french, "HX-Request": "true"}),
        client.get(reverse("segments:edit", args=[segment.pk]), headers={**french, "HX-Request": "true"}),
        client.get(reverse("segments:delete", args=[segment.pk]), headers={**french, "HX-Request": "true"}),
    ]
    assert [_english_left(page.content.decode()) for page in pages] == [[]] * len(pages)
    assert "Il y a déjà un segment nommé" in pages[7].content.decode()
    assert "ne peut pas être supprimé" in pages[9].content.decode()


def test_a_broadcast_page_names_its_segment(broadcaster, people):
    segment = Segment.objects.create(name="VIP <b>", query="label=vip")
    broadcast = Broadcast.objects.create(
        title="Sale", text="Hi", audience={"filters": segment.filters()}, segment=segment
    )
    html = broadcaster.get(broadcast.get_absolute_url()).text
    assert "Segment “VIP &lt;b&gt;”: its filter as it is when sending starts is used and recorded." in html


# The admin ----------------------------------------------------------------------------------------------


def test_the_admin_lists_and_edits_segments(admin_client, people):
    save(admin_client, "label=vip&locale=fr", name="French VIPs", description="Our best")
    segment = Segment.objects.get()
    changelist = admin_client.get(reverse("admin:segments_segment_changelist"), {"q": "french"})
    assert changelist.status_code == 200
    assert "French VIPs" in changelist.text and "locale=fr&amp;label=vip" in changelist.text
    assert "root" in changelist.text  # created_by
    change = admin_client.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    assert change.status_code == 200 and "locale=fr&amp;label=vip" in change.text
    data = {"name": "VIPs", "description": "", "query": "label=vip&page=3&label_mode=any"}
    response = admin_client.post(reverse("admin:segments_segment_change", args=[segment.pk]), data)
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.query) == ("VIPs", "label=vip")  # normalised as the page saves it


def test_the_admin_refuses_a_filter_that_does_not_apply(admin_client, people):
    save(admin_client, "label=vip", name="VIPs")
    segment = Segment.objects.get()
    data = {"name": "VIPs", "description": "", "query": "label=ghost"}
    response = admin_client.post(reverse("admin:segments_segment_change", args=[segment.pk]), data)
    assert response.status_code == 200
    assert "There is no label named “ghost”" in response.text
    segment.refresh_from_db()
    assert segment.query == "label=vip"
    added = admin_client.post(reverse("admin:segments_segment_add"), {"name": "Ghosts", "query": "label=ghost"})
    assert added.status_code == 200 and not Segment.objects.filter(name="Ghosts").exists()


def test_the_admin_does_not_delete_a_segment_a_scheduled_broadcast_uses(admin_client, people):
    save(admin_client, "label=vip", name="VIPs")
    segment = Segment.objects.get()
    Broadcast.objects.create(
        title="Sale", text="Hi", audience={"filters": segment.filters()}, segment=segment, status="scheduled"
    )
    response = admin_client.post(reverse("admin:segments_segment_delete", args=[segment.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert Segment.objects.filter(pk=segment.pk).exists()
