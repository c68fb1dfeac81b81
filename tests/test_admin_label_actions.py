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
    return client.post(f"{CHANGELIST}{query}", data, follow="confirm" in extra)


def test_the_add_action_first_asks_which_labels(staff_client, crowd, make_label):
    make_label("VIP")
    response = _post(staff_client, "add_labels_to_selected", [crowd[0].pk, crowd[1].pk])
    assert response.status_code == 200
    assert "2 subscribers are selected." in response.text
    assert "VIP" in response.text


def test_the_add_action_labels_the_selected_subscribers(staff_client, crowd, make_label, admin_user):
    vip = make_label("VIP")
    SubscriberLabel.objects.create(subscriber=crowd[0], label=vip)

    ids = [s.pk for s in crowd[:3]]
    preview = _post(staff_client, "add_labels_to_selected", ids, apply="Continue", labels=[vip.pk])
    assert "2 of them get it; 1 already has it." in " ".join(preview.text.split())
    assert not LabelOperation.objects.exists(), "the confirmation changes nothing"

    response = _post(staff_client, "add_labels_to_selected", ids, apply="Add labels", labels=[vip.pk], confirm="1")

    assert "Added “VIP” to 2 subscribers (1 already had it)." in response.text
    assert set(SubscriberLabel.objects.values_list("subscriber", flat=True)) == {s.pk for s in crowd[:3]}
    operation = LabelOperation.objects.get()
    assert (operation.source, operation.status, operation.selected_count, operation.changed_count) == (
        "admin",
        "done",
        3,
        2,
    )
    assert operation.created_by == admin_user
    assert operation.members.count() == 2
    assert not LabelChange.objects.exists()


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
        confirm="1",
    )
    assert set(SubscriberLabel.objects.values_list("subscriber", flat=True)) == {crowd[3].pk, crowd[4].pk}
    assert LabelOperation.objects.get().filters == {"filters": {"channel": ["web"]}}


def test_select_across_uses_the_subscribers_page_search(staff_client, make_subscriber, make_label):
    ada = make_subscriber(first_name="Ada", last_name="Lovelace")
    make_subscriber(first_name="Ada", last_name="Byron")
    vip = make_label("VIP")
    _post(
        staff_client,
        "add_labels_to_selected",
        [ada.pk],
        query="?q=lovelace+ada",
        select_across="1",
        apply="Add labels",
        labels=[vip.pk],
        confirm="1",
    )
    assert list(SubscriberLabel.objects.values_list("subscriber", flat=True)) == [ada.pk]


def test_a_large_selection_runs_in_the_background(staff_client, crowd, make_label, settings):
    settings.BULK_BACKGROUND_THRESHOLD = 2
    vip = make_label("VIP")
    response = _post(
        staff_client, "add_labels_to_selected", [crowd[0].pk], select_across="1", labels=[vip.pk], confirm="1"
    )
    operation = LabelOperation.objects.get()
    assert "runs in the background" in response.text
    assert operation.get_absolute_url() in response.text
    assert operation.status == "pending"


def test_the_remove_action_takes_labels_away(staff_client, crowd, make_label):
    vip, active = make_label("VIP"), make_label("Active")
    for subscriber in crowd:
        subscriber.labels.add(vip, active)
    response = _post(
        staff_client,
        "remove_labels_from_selected",
        [crowd[0].pk],
        select_across="1",
        apply="Remove",
        labels=[vip.pk],
        confirm="1",
    )
    assert "Removed “VIP” from 5 subscribers (0 did not have it)." in response.text
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
    response = _post(client, "add_labels_to_selected", [crowd[0].pk], apply="Add labels", labels=[1], confirm="1")
    assert not SubscriberLabel.objects.exists()
