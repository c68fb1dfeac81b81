"""The bulk label actions of the Subscribers page: pick labels, confirm, change, see the result."""

import json
from html import unescape
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from subscribers import actions
from subscribers.actions import add_labels
from subscribers.models import LabelChange, LabelOperation, Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db

URL = reverse("subscribers:bulk_labels")
LIST = reverse("subscribers:list")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def signed_in(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def vip(make_label):
    return make_label("VIP", color="purple")


@pytest.fixture
def news(make_label):
    return make_label("Newsletter", color="indigo")


@pytest.fixture
def people(make_subscriber):
    """Five French speakers and three English speakers."""
    return [make_subscriber(locale="fr-FR") for _ in range(5)] + [make_subscriber(locale="en-US") for _ in range(3)]


def labelled(subscribers, *labels):
    add_labels(Subscriber.objects.filter(pk__in=[s.pk for s in subscribers]), labels)


def carrying(label):
    return set(SubscriberLabel.objects.filter(label=label).values_list("subscriber", flat=True))


def shown(response):
    """The response's HTML with entities decoded and spaces collapsed, as a person reads it."""
    return " ".join(unescape(response.content.decode()).split())


def pks(subscribers):
    return {s.pk for s in subscribers}


def toasts(response):
    """The messages an htmx answer shows as toasts (hexasubs.middleware)."""
    return [message["text"] for message in json.loads(response["HX-Trigger"])["showMessages"]["messages"]]


def selection(kind="add", *, filters="", ids=(), all_matching=False, labels=(), confirm=False):
    data = {"kind": kind, "filters": filters, "ids": [s.pk for s in ids], "next": f"{LIST}?{filters}"}
    if all_matching:
        data["all_matching"] = "1"
    if labels:
        data["labels"] = [label.pk for label in labels]
    if confirm:
        data["confirm"] = "1"
    return data


# The list page ------------------------------------------------------------------------------------------


def test_the_list_offers_checkboxes_and_the_bulk_bar_to_operators(signed_in, people):
    html = shown(signed_in.get(LIST, {"locale": "fr", "sort": "name", "page": "1"}))
    assert html.count('name="ids"') == 5
    assert 'aria-label="Select all on this page"' in html
    assert "Add labels…" in html and "Remove labels…" in html
    # The filter as submitted travels with the form; paging and sorting do not belong to it.
    assert '<input type="hidden" name="filters" value="locale=fr">' in html


def test_the_offer_to_select_all_matching_names_the_total(signed_in, people):
    html = shown(signed_in.get(LIST, {"per_page": "25"}))
    assert "Select all 8 subscribers matching this filter" in html
    assert "All 8 subscribers matching this filter are selected." in html


def test_a_large_table_offers_the_estimate_as_the_page_shows_it(signed_in, people, monkeypatch):
    from subscribers import views
    from subscribers.queries import Total

    monkeypatch.setattr(views, "count_subscribers", lambda queryset, filtered: Total(1_234_567, exact=False))
    html = shown(signed_in.get(LIST))
    assert "of about 1.2 million subscribers" in html
    assert "Select all about 1.2 million subscribers matching this filter" in html
    assert "About 1.2 million subscribers selected" in html


def test_viewers_without_the_permission_get_no_checkboxes_and_may_not_post(client, django_user_model, people, vip):
    viewer = django_user_model.objects.create_user("vera", password="password")
    viewer.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    client.force_login(viewer)
    html = shown(client.get(LIST))
    assert 'name="ids"' not in html and "Add labels…" not in html and "bulk-form" not in html
    assert client.get(URL, selection(ids=people)).status_code == 403
    response = client.post(URL, selection(ids=people, labels=[vip], confirm=True))
    assert response.status_code == 403
    assert not SubscriberLabel.objects.exists()
    assert not LabelOperation.objects.exists()


def test_the_list_page_runs_the_same_queries_with_the_checkbox_column(
    signed_in, people, vip, news, django_assert_num_queries
):
    labelled(people, vip, news)
    # 1 session, 2 user, 3 user's group permissions, 4 user's own permissions,
    # 5 bounded count, 6 channels for the filter, 7 labels for the filter,
    # 8 the page of subscribers with their channel, 9 their labels, 10 label groups for the filter.
    with django_assert_num_queries(10):
        response = signed_in.get(LIST)
    assert shown(response).count('name="ids"') == 8


# Picking labels --------------------------------------------------------------------------------------------


def test_add_labels_opens_a_dialog_with_a_filter_box_over_the_labels(signed_in, people, vip, news):
    response = signed_in.get(URL, selection(ids=people[:3]), headers=HTMX)
    html = shown(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="modal fade" id="dialog"')
    assert '<h2 class="modal-title fs-5" id="dialog-title">Add labels</h2>' in html
    assert "3 selected subscribers" in html
    assert "Find a label" in html and "Newsletter" in html and "VIP" in html
    # The selection is carried on, hidden.
    assert html.count('name="ids"') == 3


def test_an_empty_selection_is_a_clear_warning_and_changes_nothing(signed_in, people, vip):
    response = signed_in.get(URL, selection(), headers=HTMX)
    assert response.status_code == 422
    assert "No subscriber is selected." in shown(response)
    response = signed_in.post(URL, selection(labels=[vip], confirm=True), headers=HTMX)
    assert response.status_code == 422
    assert "No subscriber is selected." in shown(response)
    assert not SubscriberLabel.objects.exists() and not LabelOperation.objects.exists()


def test_no_label_picked_is_a_clear_warning_and_changes_nothing(signed_in, people, vip):
    response = signed_in.post(URL, selection(ids=people), headers=HTMX)
    assert response.status_code == 422
    assert "Pick at least one label. Nothing was changed." in shown(response)
    assert 'name="labels"' in shown(response)  # the operator can pick again
    response = signed_in.post(URL, selection(ids=people, confirm=True), headers=HTMX)
    assert response.status_code == 422
    assert not LabelOperation.objects.exists()


def test_a_filter_that_no_longer_applies_is_explained(signed_in, people, vip):
    response = signed_in.post(URL, selection(filters="label=deleted", all_matching=True, labels=[vip]), headers=HTMX)
    assert response.status_code == 422
    assert "The table's filter no longer applies" in shown(response)
    assert "There is no label named “deleted”" in shown(response)


def test_a_damaged_selection_is_explained(signed_in, people, vip):
    data = {**selection(labels=[vip]), "ids": ["1", "x"]}
    response = signed_in.post(URL, data, headers=HTMX)
    assert response.status_code == 422
    assert "The selection was damaged." in shown(response)


# Confirming: the real effect --------------------------------------------------------------------------------


def test_the_confirmation_states_the_real_effect_of_adding_one_label(signed_in, people, vip):
    labelled(people[:2], vip)
    response = signed_in.post(URL, selection(ids=people[:5], labels=[vip]), headers=HTMX)
    html = shown(response)
    assert response.status_code == 200
    assert "Add “VIP” to 5 subscribers?" in html
    assert "3 of them get it; 2 already have it." in html
    assert 'name="confirm" value="1"' in html
    assert carrying(vip) == pks(people[:2])  # nothing changed yet


def test_the_confirmation_of_a_removal_counts_who_has_the_label(signed_in, people, vip):
    labelled(people[:2], vip)
    html = shown(signed_in.post(URL, selection("remove", filters="locale=fr", all_matching=True, labels=[vip])))
    assert "Remove “VIP” from 5 subscribers?" in html
    assert "2 of them have it and lose it; 3 do not have it." in html


def test_the_confirmation_of_several_labels(signed_in, people, vip, news):
    labelled(people[:1], vip, news)
    labelled(people[1:2], vip)
    html = shown(signed_in.post(URL, selection(ids=people[:3], labels=[vip, news])))
    assert "Add “Newsletter”, “VIP” to 3 subscribers?" in html
    assert "2 of them lack at least one of these labels; 1 already has them all." in html


# Changing ------------------------------------------------------------------------------------------------


def test_adding_to_ticked_rows_keeps_those_already_labelled_and_says_so(signed_in, operator, people, vip):
    labelled(people[:2], vip)
    before = {s.pk: s.updated_at for s in Subscriber.objects.all()}
    response = signed_in.post(URL, selection(ids=people[:5], labels=[vip], confirm=True), headers=HTMX)
    assert response.status_code == 204
    triggers = json.loads(response["HX-Trigger"])
    assert triggers["showMessages"]["messages"] == [
        {"text": "Added “VIP” to 3 subscribers (2 already had it).", "level": "success"}
    ]
    assert "subscribers-changed" in triggers and "closeModal" in triggers
    assert carrying(vip) == pks(people[:5])
    after = {s.pk: s.updated_at for s in Subscriber.objects.all()}
    assert after == before, "labels are not the profile: updated_at stays"


def test_removing_takes_the_label_away_from_the_selection_only(signed_in, people, vip, news):
    labelled(people, vip, news)
    response = signed_in.post(URL, selection("remove", ids=people[:3], labels=[vip], confirm=True), headers=HTMX)
    assert toasts(response) == ["Removed “VIP” from 3 subscribers (0 did not have it)."]
    assert carrying(vip) == pks(people[3:])
    assert carrying(news) == pks(people)


def test_the_change_is_recorded_once_with_exactly_whom_it_changed(signed_in, operator, people, vip):
    signed_in.post(URL, selection(ids=people[:2], labels=[vip], confirm=True), headers=HTMX)
    operation = LabelOperation.objects.get()
    assert (operation.kind, operation.source, operation.status, operation.created_by) == (
        "add",
        "bulk",
        "done",
        operator,
    )
    assert operation.filters == {"filters": {}, "ids": sorted(pks(people[:2]))}
    assert set(operation.members.values_list("subscriber_id", "label_id")) == {(s.pk, vip.pk) for s in people[:2]}
    assert not LabelChange.objects.exists(), "a bulk change writes no history row per subscriber"


@pytest.fixture
def labelled_people(make_subscriber, vip, news, make_label):
    """Subscribers with several labels, for each label filter mode."""
    beta = make_label("Beta testers")
    both = make_subscriber(first_name="Both", last_name="Labels")
    only_vip = make_subscriber(first_name="Only", last_name="Vip")
    only_news = make_subscriber(first_name="Only", last_name="News")
    none = make_subscriber(first_name="No", last_name="Labels")
    labelled([both, only_vip], vip)
    labelled([both, only_news], news)
    return {"both": both, "only_vip": only_vip, "only_news": only_news, "none": none, "beta": beta}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("label=vip&label=newsletter", {"both", "only_vip", "only_news"}),
        ("label=vip&label=newsletter&label_mode=all", {"both"}),
        ("label=vip&label_mode=none", {"only_news", "none"}),
        ("no_labels=1", {"none"}),
        ("q=only", {"only_vip", "only_news"}),
        ("q=only&label=vip", {"only_vip"}),
    ],
)
def test_select_all_matching_applies_the_submitted_filter(signed_in, labelled_people, filters, expected):
    beta = labelled_people["beta"]
    data = selection(filters=filters, all_matching=True, labels=[beta])
    html = shown(signed_in.post(URL, data))
    assert f"Add “Beta testers” to {len(expected)} subscriber" in html
    response = signed_in.post(URL, {**data, "confirm": "1"})
    assert response.status_code == 302
    assert carrying(beta) == {labelled_people[name].pk for name in expected}


def test_select_all_matching_ignores_the_ticked_ids(signed_in, people, vip):
    # The rows of the page were ticked, then "all matching" was chosen: the whole filter counts.
    signed_in.post(URL, selection(filters="locale=fr", ids=people[:2], all_matching=True, labels=[vip], confirm=True))
    assert carrying(vip) == pks(people[:5])


# Without JavaScript ------------------------------------------------------------------------------------------


def test_without_javascript_it_is_pages_that_redirect_back_with_a_message(signed_in, people, vip):
    query = {**selection(filters="locale=fr", all_matching=True)}
    pick = signed_in.get(URL, query)
    assert pick.status_code == 200
    assert '<div class="modal position-static d-block dialog-page">' in shown(pick)
    assert "All subscribers matching the table's filter" in shown(pick)
    confirm = signed_in.post(URL, {**query, "labels": [vip.pk]})
    assert "Add “VIP” to 5 subscribers?" in shown(confirm)
    response = signed_in.post(URL, {**query, "labels": [vip.pk], "confirm": "1"}, follow=True)
    assert response.redirect_chain == [(f"{LIST}?locale=fr", 302)]
    assert "Added “VIP” to 5 subscribers (0 already had it)." in shown(response)


def test_it_never_redirects_to_another_site(signed_in, people, vip):
    data = {**selection(ids=people, labels=[vip], confirm=True), "next": "https://evil.example/"}
    assert signed_in.post(URL, data)["Location"] == LIST


# The background path -----------------------------------------------------------------------------------


def test_a_large_selection_runs_in_the_background_and_the_dialog_polls_its_status(
    signed_in, people, vip, settings, django_capture_on_commit_callbacks
):
    settings.BULK_BACKGROUND_THRESHOLD = 3
    data = selection(filters="locale=fr", all_matching=True, labels=[vip], confirm=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(URL, data, headers=HTMX)
    assert response.status_code == 202
    operation = LabelOperation.objects.get()
    assert operation.status == "pending"
    status_url = reverse("subscribers:operation", args=[operation.pk])
    assert f'hx-get="{status_url}?next=' in shown(response) and 'hx-trigger="every 1s"' in shown(response)
    assert not SubscriberLabel.objects.exists()

    queued = DBTaskResult.objects.get()
    assert (queued.task_path, queued.args_kwargs["args"]) == (
        "subscribers.actions.continue_label_operation",
        [operation.pk],
    )
    waiting = signed_in.get(status_url, headers=HTMX)
    assert "Waiting for a background worker" in shown(waiting) and 'hx-trigger="every 1s"' in shown(waiting)

    actions.continue_label_operation.call(operation.pk)

    done = signed_in.get(status_url, headers=HTMX)
    assert "Added “VIP” to 5 subscribers (0 already had it)." in shown(done)
    assert "every 1s" not in shown(done)  # polling stops
    assert toasts(done) == ["Added “VIP” to 5 subscribers (0 already had it)."]
    assert carrying(vip) == pks(people[:5])


def test_without_javascript_a_large_selection_shows_a_refreshing_status_page(
    signed_in, people, vip, settings, django_capture_on_commit_callbacks
):
    settings.BULK_BACKGROUND_THRESHOLD = 3
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(URL, selection(filters="locale=fr", all_matching=True, labels=[vip], confirm=True))
    operation = LabelOperation.objects.get()
    status_url = reverse("subscribers:operation", args=[operation.pk])
    assert response["Location"] == f"{status_url}?{urlencode({'next': LIST + '?locale=fr'})}"
    waiting = signed_in.get(response["Location"])
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in shown(waiting)
    actions.continue_label_operation.call(operation.pk)
    done = signed_in.get(response["Location"])
    assert "http-equiv" not in shown(done)
    assert "Added “VIP” to 5 subscribers (0 already had it)." in shown(done)
    assert f'href="{LIST}?locale=fr"' in shown(done)


def test_the_status_of_an_operation_needs_the_permission(client, nobody, operator, vip):
    operation = actions.start_label_operation("add", [vip], by=operator, source="bulk", selection={"filters": {}})
    client.force_login(nobody)
    assert client.get(reverse("subscribers:operation", args=[operation.pk])).status_code == 403


def test_all_matching_means_the_filter_submitted_with_the_page_not_a_later_url(signed_in, people, vip):
    # The operator changed the filter in another tab meanwhile: the form still carries the page's own.
    data = {
        **selection(filters="locale=fr", all_matching=True, labels=[vip], confirm=True),
        "next": f"{LIST}?locale=en",
    }
    response = signed_in.post(URL, data)
    assert response["Location"] == f"{LIST}?locale=en"
    assert carrying(vip) == pks(people[:5])
    assert LabelOperation.objects.get().filters == {"filters": {"locale": ["fr"]}}


def test_the_status_of_a_failed_operation_says_why(signed_in, operator, vip):
    operation = actions.start_label_operation("add", [vip], by=operator, source="bulk", selection={"filters": {}})
    LabelOperation.objects.filter(pk=operation.pk).update(status="failed", error="disk full")
    response = signed_in.get(reverse("subscribers:operation", args=[operation.pk]), headers=HTMX)
    html = shown(response)
    assert "The change stopped with an error." in html and "disk full" in html
    assert "every 1s" not in html, "polling stops"
    assert "showMessage" not in response.get("HX-Trigger", ""), "no success toast: the block says what failed"


def test_a_confirmation_that_would_change_nothing_says_so_and_offers_only_close(signed_in, people, vip):
    labelled(people[:3], vip)
    html = shown(signed_in.post(URL, selection(ids=people[:3], labels=[vip]), headers=HTMX))
    assert "Nothing to change" in html and "All 3 selected subscribers already have “VIP”." in html
    assert 'name="confirm"' in html  # the form is there, but without its button:
    assert "Add labels</button>" not in html and ">Cancel<" not in html and ">Close<" in html
    removal = shown(signed_in.post(URL, selection("remove", ids=people[3:5], labels=[vip]), headers=HTMX))
    assert "None of the 2 selected subscribers has “VIP”." in removal
