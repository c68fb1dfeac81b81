"""The label history on the subscriber detail page: who labelled this person, and when."""

from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.urls import reverse

from subscribers.actions import add_labels, change_labels, remove_labels
from subscribers.models import LabelChange, LabelOperation, LabelSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(make_subscriber):
    return make_subscriber(first_name="Ada", last_name="Lovelace")


def history_rows(response):
    return [(c.label_name, c.action, c.source) for c in response.context["history"]]


def test_the_history_lists_each_change_newest_first_with_source_and_author(
    client, operator, label_manager, ada, make_label
):
    vip, news = make_label("VIP", color="purple"), make_label("Newsletter")
    start = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    add_labels([ada], [vip], by=operator, source=LabelSource.BULK)
    operation = LabelOperation.objects.get()
    LabelOperation.objects.filter(pk=operation.pk).update(started_at=start)
    change_labels(ada, add=[news], by=label_manager)
    change_labels(ada, remove=[vip], source=LabelSource.API)
    LabelChange.objects.filter(action="removed").update(changed_at=start + timedelta(days=1))
    client.force_login(operator)
    response = client.get(reverse("subscribers:detail", args=[ada.pk]))
    assert history_rows(response) == [
        ("newsletter", "added", "app"),
        ("vip", "removed", "api"),
        ("vip", "added", "bulk"),
    ]
    assert f'<a href="/subscribers/bulk-changes/{operation.pk}/">Bulk change #{operation.pk}</a>' in (
        response.content.decode()
    ), "a bulk change links to its page"
    html = unescape(response.content.decode())
    assert "Label history" in html
    assert "Manage labels dialog" in html and "Bulk action" in html and "API" in html
    assert "Liam" in html and "Olivia" in html and "automatically" in html
    assert '<span class="label-chip label-chip--purple" title="vip">VIP</span>' in html


def test_a_deleted_label_keeps_its_name_in_the_history(client, operator, ada, make_label):
    old = make_label("Old campaign")
    change_labels(ada, add=[old], by=operator)
    old.delete()
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk])).content.decode()
    assert "old_campaign" in html


def test_a_subscriber_never_labelled_has_an_empty_history(client, operator, ada):
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk])).content.decode()
    assert "No label has been added or removed yet." in html


def test_the_htmx_refresh_after_manage_labels_also_refreshes_the_history(client, operator, ada, make_label):
    change_labels(ada, add=[make_label("VIP")], by=operator)
    client.force_login(operator)
    html = client.get(reverse("subscribers:detail", args=[ada.pk]), headers={"HX-Request": "true"}).content.decode()
    assert 'id="label-history" aria-labelledby="label-history-title" hx-swap-oob="true"' in html


@pytest.mark.parametrize("changes", [1, 40])
def test_the_detail_page_runs_the_same_queries_whatever_the_length_of_the_history(
    client, operator, ada, make_label, changes, django_assert_num_queries
):
    labels = [make_label(f"Label {n}") for n in range(4)]
    for n in range(changes):
        label = labels[n % 4]
        if n % 2:
            change_labels(ada, **{"add" if n % 8 < 4 else "remove": [label]}, by=operator)
        else:
            (add_labels if n % 8 < 4 else remove_labels)([ada], [label], by=operator)
    client.force_login(operator)
    # 1 session, 2 user, 3 user's own permissions, 4 user's group permissions (the permission decorator),
    # 5 the subscriber with its channel, 6 the labels with who assigned them, 7 the single changes with labels
    # and authors, 8 the bulk changes that changed this subscriber, 9 those operations with their authors,
    # 10 their labels.
    with django_assert_num_queries(10):
        response = client.get(reverse("subscribers:detail", args=[ada.pk]))
    assert len(response.context["history"]) == changes, "every change is shown, single or bulk"
