import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from subscribers.actions import add_labels, change_labels
from subscribers.models import Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def ada(make_subscriber):
    return make_subscriber(first_name="Ada", last_name="Lovelace")


@pytest.fixture
def vip(make_label):
    return make_label("VIP", color="purple")


@pytest.fixture
def news(make_label):
    return make_label("Newsletter", color="indigo")


@pytest.fixture
def beta(make_label):
    return make_label("Beta testers")


def url(subscriber):
    return reverse("subscribers:labels", args=[subscriber.pk])


def label_titles(subscriber):
    return sorted(subscriber.labels.values_list("title", flat=True))


def test_the_dialog_shows_the_name_and_every_label_with_current_ones_chosen(client, operator, ada, vip, news):
    add_labels(Subscriber.objects.filter(pk=ada.pk), [vip])
    client.force_login(operator)
    response = client.get(url(ada), headers=HTMX)
    html = response.text
    assert html.lstrip().startswith('<div class="modal fade" id="dialog"')
    assert '<h2 class="modal-title fs-5" id="dialog-title">Manage labels</h2>' in html
    assert 'readonly value="Ada Lovelace"' in html
    # Labels are listed by title: Newsletter first, then VIP.
    assert f'value="{news.pk}" id="id_labels_0">' in html
    assert f'value="{vip.pk}" id="id_labels_1" checked>' in html
    assert f'name="labels_before" value="{vip.pk}"' in html
    assert "Newsletter" in html and "Find a label" in html


def test_submit_adds_and_removes_and_answers_204_with_triggers(client, operator, ada, vip, news):
    add_labels(Subscriber.objects.filter(pk=ada.pk), [vip])
    client.force_login(operator)
    response = client.post(url(ada), {"labels": [news.pk], "labels_before": [vip.pk]}, headers=HTMX)
    assert response.status_code == 204
    triggers = json.loads(response["HX-Trigger"])
    assert triggers["showMessages"] == {"messages": [{"text": "Labels updated for Ada Lovelace", "level": "success"}]}
    assert f"subscriber-{ada.pk}-changed" in triggers
    assert "closeModal" in triggers
    assert label_titles(ada) == ["Newsletter"]
    assert SubscriberLabel.objects.get(subscriber=ada, label=news).assigned_by == operator


def test_a_label_another_operator_added_meanwhile_stays(client, operator, label_manager, ada, vip, news, beta):
    add_labels(Subscriber.objects.filter(pk=ada.pk), [vip])
    client.force_login(operator)
    client.get(url(ada), headers=HTMX)  # the dialog shows VIP chosen
    change_labels(ada, add=[beta], by=label_manager)  # meanwhile, someone adds Beta testers
    client.post(url(ada), {"labels": [vip.pk, news.pk], "labels_before": [vip.pk]}, headers=HTMX)
    assert label_titles(ada) == ["Beta testers", "Newsletter", "VIP"]


def test_a_label_another_operator_removed_meanwhile_stays_removed(client, operator, label_manager, ada, vip, news):
    add_labels(Subscriber.objects.filter(pk=ada.pk), [vip, news])
    client.force_login(operator)
    change_labels(ada, remove=[news], by=label_manager)
    # This operator only unticks VIP; Newsletter was still ticked in their dialog.
    client.post(url(ada), {"labels": [news.pk], "labels_before": [vip.pk, news.pk]}, headers=HTMX)
    assert label_titles(ada) == []


def test_without_javascript_it_is_a_page_that_redirects_back_with_a_message(client, operator, ada, vip):
    client.force_login(operator)
    back = reverse("subscribers:list") + "?label=vip"
    page = client.get(url(ada), {"next": back})
    assert "<html" in page.text and "Manage labels" in page.text
    response = client.post(url(ada), {"labels": [vip.pk], "next": back}, follow=True)
    assert response.redirect_chain == [(back, 302)]
    assert "Labels updated for Ada Lovelace" in response.text
    assert label_titles(ada) == ["VIP"]


def test_it_never_redirects_to_another_site(client, operator, ada):
    client.force_login(operator)
    response = client.post(url(ada), {"next": "https://evil.example/"})
    assert response.url == reverse("subscribers:list")


def test_a_deleted_label_is_explained_and_nothing_is_half_saved(client, operator, ada, vip, news):
    client.force_login(operator)
    gone = news.pk
    news.delete()
    add_labels(Subscriber.objects.filter(pk=ada.pk), [vip])
    response = client.post(url(ada), {"labels": [gone], "labels_before": [vip.pk]}, headers=HTMX)
    assert response.status_code == 422
    assert "A label you chose no longer exists" in response.text
    assert "nothing was saved" in response.text
    assert label_titles(ada) == ["VIP"]
    # The dialog still carries what it first showed, so a retry keeps the no-lost-update rule.
    assert f'name="labels_before" value="{vip.pk}"' in response.text


def test_an_unknown_label_id_is_explained(client, operator, ada):
    client.force_login(operator)
    response = client.post(url(ada), {"labels": ["abc"]}, headers=HTMX)
    assert response.status_code == 422
    assert "“abc” is not a label. Nothing was saved." in response.text


def test_a_damaged_form_is_explained(client, operator, ada, vip):
    client.force_login(operator)
    response = client.post(url(ada), {"labels": [vip.pk], "labels_before": ["x"]}, headers=HTMX)
    assert response.status_code == 422
    assert "The form was damaged" in response.text
    assert label_titles(ada) == []


def test_a_subscriber_deleted_meanwhile_is_explained(client, operator, ada, vip):
    client.force_login(operator)
    target = url(ada)
    ada.delete()
    response = client.post(target, {"labels": [vip.pk]}, headers=HTMX)
    assert response.status_code == 404
    assert "This subscriber no longer exists" in response.text
    assert not SubscriberLabel.objects.exists()


def test_without_the_permission_the_dialog_says_so(client, django_user_model, ada, vip):
    viewer = django_user_model.objects.create_user("vera", password="password")
    viewer.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    client.force_login(viewer)
    opened = client.get(url(ada), headers=HTMX)
    assert opened.status_code == 403
    assert "You may not change the labels of subscribers" in opened.text
    posted = client.post(url(ada), {"labels": [vip.pk]}, headers=HTMX)
    assert posted.status_code == 403
    assert label_titles(ada) == []


def test_the_row_reloads_itself_with_new_chips(client, operator, ada, vip):
    client.force_login(operator)
    add_labels(Subscriber.objects.filter(pk=ada.pk), [vip])
    response = client.get(
        reverse("subscribers:row", args=[ada.pk]),
        headers={**HTMX, "HX-Current-URL": "http://testserver/subscribers/?page=2"},
    )
    html = response.text
    assert html.lstrip().startswith(f'<tr id="subscriber-{ada.pk}"')
    assert f'hx-trigger="subscriber-{ada.pk}-changed from:body"' in html
    assert '<span class="label-chip label-chip--purple" title="vip">VIP</span>' in html
    assert "next=/subscribers/%3Fpage%3D2" in html


# Detail page ---------------------------------------------------------------------------------------------


def test_the_detail_page_shows_every_field_and_who_assigned_each_label(client, operator, ada, vip):
    ada.timezone, ada.country, ada.avatar_url = "Europe/London", "GB", "https://example.com/ada.png"
    ada.save()
    change_labels(ada, add=[vip], by=operator)
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk])).text
    for text in [
        "Facebook Messenger",
        ada.foreign_id,
        "Ada",
        "Lovelace",
        "en-US",
        "Europe/London",
        "United Kingdom",
        "https://example.com/ada.png",
        "Created",
        "Updated",
        "Last seen",
        "VIP",
        "by Olivia",
    ]:
        assert text in html, text
    assert "Manage labels" in html


def test_the_detail_page_needs_the_view_permission(client, nobody, ada):
    client.force_login(nobody)
    assert client.get(reverse("subscribers:detail", args=[ada.pk])).status_code == 403


def test_an_unknown_subscriber_is_404(client, operator):
    client.force_login(operator)
    assert client.get(reverse("subscribers:detail", args=[999999])).status_code == 404
