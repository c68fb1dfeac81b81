"""Each label's subscriber count (LabelCount, read by the Labels page) always equals its assignments.

The database keeps the counts (migration 0006's triggers), so they must hold
whatever changed the labels: the dialog, a bulk operation, the admin, the API,
a deleted label or subscriber, or rows written directly. Runs on both databases.
"""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count
from django.urls import reverse

from labels.actions import delete_label
from subscribers.actions import add_labels, change_labels, count_labels, remove_labels, request_label_operation
from subscribers.models import LabelCount, LabelSource, Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db


def kept():
    return dict(LabelCount.objects.filter(subscribers__gt=0).values_list("label", "subscribers"))


def true_counts():
    return dict(SubscriberLabel.objects.order_by().values("label").annotate(n=Count("*")).values_list("label", "n"))


@pytest.fixture
def people(make_subscriber):
    return [make_subscriber() for _ in range(5)]


@pytest.fixture
def vip(make_label):
    return make_label("VIP")


@pytest.fixture
def active(make_label):
    return make_label("Active users")


def test_adding_and_removing_in_bulk_moves_each_label_by_its_real_change(people, vip, active):
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)  # one already has it
    assert add_labels(Subscriber.objects.all(), [vip, active]) == 9
    assert kept() == true_counts() == {vip.pk: 5, active.pk: 5}
    assert remove_labels(Subscriber.objects.filter(pk__in=[p.pk for p in people[:2]]), [vip]) == 2
    assert kept() == true_counts() == {vip.pk: 3, active.pk: 5}


def test_the_manage_labels_dialog_keeps_the_counts(client, operator, people, vip, active):
    client.force_login(operator)
    change_labels(people[0], add=[vip])
    url = reverse("subscribers:labels", args=[people[0].pk])
    response = client.post(url, {"labels": [active.pk], "labels_before": [vip.pk]}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert kept() == true_counts() == {active.pk: 1}


def test_a_bulk_operation_keeps_the_counts(people, vip, operator):
    selection = {"filters": {"q": ["First"]}}
    request_label_operation("add", [vip], by=operator, source=LabelSource.BULK, selection=selection)
    assert kept() == true_counts() == {vip.pk: 5}
    request_label_operation("remove", [vip], by=operator, source=LabelSource.BULK, selection=selection)
    assert kept() == true_counts() == {}


def test_the_admin_actions_keep_the_counts(client, admin_user, people, vip):
    client.force_login(admin_user)
    changelist = reverse("admin:subscribers_subscriber_changelist")
    ids = [str(person.pk) for person in people[:3]]
    data = {"action": "add_labels_to_selected", ACTION_CHECKBOX_NAME: ids, "labels": [vip.pk], "confirm": "1"}
    client.post(changelist, data, follow=True)
    assert kept() == true_counts() == {vip.pk: 3}


def test_the_api_keeps_the_counts(api_client, people, vip, active):
    person = people[0]
    url = f"/api/v1/channels/messenger/subscribers/{person.foreign_id}/labels"
    response = api_client.post(url, {"add": [vip.name, active.name]}, "application/json")
    assert response.status_code == 200
    response = api_client.post(url, {"remove": [vip.name]}, "application/json")
    assert response.status_code == 200
    assert kept() == true_counts() == {active.pk: 1}


def test_deleting_a_label_drops_its_count_and_leaves_the_others(people, vip, active):
    add_labels(Subscriber.objects.all(), [vip, active])
    delete_label(vip)
    assert not LabelCount.objects.filter(label=vip.pk).exists()
    assert kept() == true_counts() == {active.pk: 5}


def test_deleting_subscribers_takes_them_out_of_the_counts(people, vip, active):
    add_labels(Subscriber.objects.all(), [vip, active])
    people[0].delete()
    Subscriber.objects.filter(pk__in=[people[1].pk, people[2].pk]).delete()
    assert kept() == true_counts() == {vip.pk: 2, active.pk: 2}


def test_rows_written_directly_are_counted_too(people, vip, active):
    people[0].labels.add(vip, active)
    SubscriberLabel.objects.bulk_create([SubscriberLabel(subscriber=person, label=vip) for person in people[1:]])
    SubscriberLabel.objects.filter(subscriber=people[1]).update(label=active)
    assert kept() == true_counts() == {vip.pk: 4, active.pk: 2}


def test_count_labels_recounts_everything_from_the_assignments(people, vip, active):
    add_labels(Subscriber.objects.all(), [vip])
    LabelCount.objects.update(subscribers=0)  # as after a load with the triggers off
    count_labels()
    assert kept() == true_counts() == {vip.pk: 5}


def test_the_labels_page_shows_the_kept_counts(client, operator, people, vip, active):
    add_labels(Subscriber.objects.all(), [vip])
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [active])
    client.force_login(operator)
    response = client.get(reverse("labels:list") + "?sort=-subscriber_count")
    assert re.findall(r'aria-label="Subscribers with the label [^"]*">([\d,]+)</a>', response.text) == ["5", "1"]
