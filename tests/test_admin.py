import pytest
from django.urls import reverse

from labels.models import Label
from subscribers.models import LabelOperation, SubscriberLabel

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_admin_adds_a_label_and_generates_its_name(staff_client):
    response = staff_client.post(
        reverse("admin:labels_label_add"), {"title": "Intéressé par les produits", "name": "", "description": ""}
    )
    assert response.status_code == 302
    assert Label.objects.get().name == "interesse_par_les_produits"


def test_admin_makes_a_generated_name_unique(staff_client, make_label):
    make_label("VIP", name="vip")
    staff_client.post(reverse("admin:labels_label_add"), {"title": "V.I.P.", "name": ""})
    assert Label.objects.filter(title="V.I.P.").get().name == "v_i_p"
    staff_client.post(reverse("admin:labels_label_add"), {"title": "Vip!", "name": ""})
    assert Label.objects.get(title="Vip!").name == "vip_2"


def test_admin_refuses_a_duplicate_title_ignoring_case(staff_client, make_label):
    make_label("Active users")
    response = staff_client.post(reverse("admin:labels_label_add"), {"title": "ACTIVE USERS", "name": ""})
    assert response.status_code == 200
    assert "A label with this title already exists." in response.text
    assert Label.objects.count() == 1


def test_admin_refuses_a_taken_name_and_suggests_a_free_one(staff_client, make_label):
    make_label("Active users", name="active_users")
    response = staff_client.post(reverse("admin:labels_label_add"), {"title": "Actives", "name": "active_users"})
    assert "The name “active_users” is taken. “active_users_2” is free." in response.text


def test_admin_refuses_a_malformed_name(staff_client):
    response = staff_client.post(reverse("admin:labels_label_add"), {"title": "Actives", "name": "Not Valid"})
    assert "Use only lowercase letters, digits and _" in response.text
    assert not Label.objects.exists()


def test_admin_edit_keeps_the_name_when_the_title_changes(staff_client, make_label):
    label = make_label("Active users")
    staff_client.post(
        reverse("admin:labels_label_change", args=[label.pk]), {"title": "Engaged users", "name": "active_users"}
    )
    label.refresh_from_db()
    assert (label.title, label.name) == ("Engaged users", "active_users")


def test_admin_deletes_a_label_and_its_assignments(staff_client, make_label, make_subscriber):
    label = make_label("Active users")
    SubscriberLabel.objects.create(subscriber=make_subscriber(), label=label)
    staff_client.post(reverse("admin:labels_label_delete", args=[label.pk]), {"post": "yes"})
    assert not Label.objects.exists()
    assert not SubscriberLabel.objects.exists()
    # The removal is in the subscriber's history, as a bulk change of source "label deleted".
    operation = LabelOperation.objects.get()
    assert (operation.source, operation.label_names, operation.changed_subscribers) == (
        "label_deleted",
        [label.name],
        1,
    )


def _with_labels(make_subscriber, labels, count):
    for _ in range(count):
        subscriber = make_subscriber()
        subscriber.labels.add(*labels)


def test_label_changelist_counts_subscribers_in_one_query(
    staff_client, make_label, make_subscriber, django_assert_num_queries
):
    labels = [make_label(f"Label {n}") for n in range(5)]
    _with_labels(make_subscriber, labels[:3], 4)
    url = reverse("admin:labels_label_changelist")
    staff_client.get(url)
    # session, user, COUNT for the paginator, COUNT for the full result, the page with its counts,
    # the label groups for the "By group" filter
    with django_assert_num_queries(6):
        response = staff_client.get(url)
    assert response.context["cl"].result_list[0].subscriber_count == 4


@pytest.mark.parametrize("rows", [3, 12])
def test_subscriber_changelist_has_no_n_plus_one(
    staff_client, make_label, make_subscriber, django_assert_num_queries, rows
):
    labels = [make_label(f"Label {n}") for n in range(4)]
    _with_labels(make_subscriber, labels, rows)
    url = reverse("admin:subscribers_subscriber_changelist")
    # session, user, COUNT for the paginator, the page with channels, the labels of the page,
    # the channels of the list filter
    with django_assert_num_queries(6):
        response = staff_client.get(url)
    assert "Label 3" in response.text


def test_subscriber_change_page_shows_the_assignments(staff_client, make_label, make_subscriber):
    subscriber = make_subscriber()
    subscriber.labels.add(make_label("VIP"))
    response = staff_client.get(reverse("admin:subscribers_subscriber_change", args=[subscriber.pk]))
    assert response.status_code == 200
    assert "VIP" in response.text


def test_the_admin_is_branded_and_its_breadcrumbs_do_not_stutter(staff_client):
    html = staff_client.get(reverse("admin:subscribers_subscriber_changelist")).text
    assert '<a href="/admin/">Hexasubs</a>' in html
    assert "Subscriber management" in html and "Subscribers &rsaquo; Subscribers" not in html
    labels = staff_client.get(reverse("admin:labels_label_changelist")).text
    assert "Label management" in labels


def test_the_admin_label_form_has_colour_chips_and_generates_the_name(staff_client):
    html = staff_client.get(reverse("admin:labels_label_add")).text
    assert 'class="color-choices"' in html and 'class="label-chip label-chip--green color-choice"' in html
    assert "css/chips.css" in html and "js/admin-label-name.js" in html
    assert f'data-name-url="{reverse("labels:name")}"' in html
    suggestion = staff_client.get(reverse("labels:name"), {"title": "Intéressé par les produits", "format": "json"})
    assert suggestion.json() == {"name": "interesse_par_les_produits", "auto_name": "interesse_par_les_produits"}
