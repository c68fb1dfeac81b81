import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from subscribers.models import Channel, LabelChange, LabelOperation, SubscriberLabel

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:subscribers_subscriber_changelist")


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def crowd(make_subscriber):
    web = Channel.objects.get(name="web")
    return [make_subscriber() for _ in range(3)] + [make_subscriber(channel=web) for _ in range(2)]


def _post(client, action, ids=(), *, query="", **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], **extra}
    return client.post(f"{CHANGELIST}{query}", data, follow="apply" in extra)


def test_the_add_action_first_asks_which_labels(staff_client, crowd, make_label):
    make_label("VIP")
    response = _post(staff_client, "add_labels_to_selected", [crowd[0].pk, crowd[1].pk])
    assert response.status_code == 200
    assert "2 subscribers are selected." in response.text
    assert "VIP" in response.text


def test_the_add_action_labels_the_selected_subscribers(staff_client, crowd, make_label, admin_user):
    vip = make_label("VIP")
    SubscriberLabel.objects.create(subscriber=crowd[0], label=vip)

    response = _post(
        staff_client, "add_labels_to_selected", [s.pk for s in crowd[:3]], apply="Add labels", labels=[vip.pk]
    )

    assert "Added &#x27;VIP&#x27; to 2 subscribers (1 already had it)." in response.text
    assert set(SubscriberLabel.objects.values_list("subscriber", flat=True)) == {s.pk for s in crowd[:3]}
    operation = LabelOperation.objects.get()
    assert (operation.source, operation.status, operation.selected_count, operation.changed_count) == (
        "admin",
        "done",
        3,
        2,
    )
    assert operation.created_by == admin_user
    assert LabelChange.objects.filter(source="admin", operation=operation).count() == 2


def test_select_across_applies_to_everyone_matching_the_filter(staff_client, crowd, make_label):
    vip = make_label("VIP")
    web = Channel.objects.get(name="web")
    _post(
        staff_client,
        "add_labels_to_selected",
        [crowd[3].pk],
        query=f"?channel__id__exact={web.pk}",
        select_across="1",
        apply="Add labels",
        labels=[vip.pk],
    )
    assert set(SubscriberLabel.objects.values_list("subscriber", flat=True)) == {crowd[3].pk, crowd[4].pk}


def test_the_remove_action_takes_labels_away(staff_client, crowd, make_label):
    vip, active = make_label("VIP"), make_label("Active")
    for subscriber in crowd:
        subscriber.labels.add(vip, active)
    response = _post(
        staff_client, "remove_labels_from_selected", [crowd[0].pk], select_across="1", apply="Remove", labels=[vip.pk]
    )
    assert "Removed &#x27;VIP&#x27; from 5 subscribers (0 did not have it)." in response.text
    assert not SubscriberLabel.objects.filter(label=vip).exists()
    assert SubscriberLabel.objects.filter(label=active).count() == 5


def test_picking_no_label_says_so_and_changes_nothing(staff_client, crowd, make_label):
    make_label("VIP")
    response = _post(staff_client, "add_labels_to_selected", [crowd[0].pk], apply="Add labels")
    assert "Pick at least one label." in response.text
    assert not LabelOperation.objects.exists()


def test_staff_without_the_permission_do_not_get_the_actions(client, django_user_model, crowd):
    clerk = django_user_model.objects.create_user("clerk", password="password", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    client.force_login(clerk)
    response = client.get(CHANGELIST)
    assert "add_labels_to_selected" not in response.text
    response = _post(client, "add_labels_to_selected", [crowd[0].pk], apply="Add labels", labels=[1])
    assert not SubscriberLabel.objects.exists()
