import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from test_label_names import TITLES_AND_NAMES

from labels.actions import delete_label
from labels.forms import LabelForm
from labels.models import Label
from subscribers.actions import add_labels
from subscribers.models import LabelOperation, Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager_client(client, label_manager):
    client.force_login(label_manager)
    return client


def _name_field(response):
    """The value shown in the dialog's Name input."""
    field = re.search(r'<input[^>]*name="name"[^>]*>', response.text).group(0)
    value = re.search(r'value="([^"]*)"', field)
    return value.group(1) if value else ""


def _triggers(response):
    return json.loads(response.headers["HX-Trigger"])


def _toasts(response):
    """The messages the response shows as toasts (hexasubs.middleware)."""
    return [message["text"] for message in _triggers(response)["showMessages"]["messages"]]


def _suggest(client, **params):
    return client.get(reverse("labels:name"), {"name": "", "auto_name": "", **params})


# The Name field, filled in by the server while the operator types the title ---------------------------------


@pytest.mark.parametrize(("title", "name"), TITLES_AND_NAMES)
def test_the_name_follows_the_title(manager_client, title, name):
    assert _name_field(_suggest(manager_client, title=title)) == name


def test_the_suggested_name_is_free(manager_client, make_label):
    make_label("VIP", name="vip")
    make_label("VIP 2", name="vip_2")
    assert _name_field(_suggest(manager_client, title="Vip!")) == "vip_3"


def test_the_name_keeps_following_the_title_it_was_generated_from(manager_client):
    response = _suggest(
        manager_client, title="Product interests", name="product_interest", auto_name="product_interest"
    )
    assert _name_field(response) == "product_interests"


def test_a_name_the_operator_typed_is_not_overwritten(manager_client):
    response = _suggest(manager_client, title="Product interest", name="products", auto_name="product_intere")
    assert _name_field(response) == "products"
    assert "is-invalid" not in response.text


def test_an_emptied_title_empties_a_generated_name(manager_client):
    assert _name_field(_suggest(manager_client, title="  ", name="vip", auto_name="vip")) == ""


def test_a_taken_name_is_explained_with_a_free_suggestion(manager_client, make_label):
    make_label("Active users", name="active_users")
    response = _suggest(manager_client, title="Actives", name="active_users")
    assert "The name “active_users” is taken. “active_users_2” is free." in response.text


def test_a_malformed_name_is_explained_with_a_suggestion(manager_client):
    response = _suggest(manager_client, title="Actives", name="Très Actifs")
    assert "Use only lowercase letters, digits and _ (at most 64). “tres_actifs” would do." in response.text


def test_the_name_endpoint_is_for_label_managers(client, operator):
    client.force_login(operator)
    assert _suggest(client, title="VIP").status_code == 403


# Add -----------------------------------------------------------------------------------------------------------


def test_add_opens_a_dialog_for_htmx_and_a_page_without_javascript(manager_client):
    dialog = manager_client.get(reverse("labels:add"), **HTMX)
    assert 'class="modal fade"' in dialog.text
    assert "Add a label" in dialog.text
    assert "<html" not in dialog.text

    page = manager_client.get(reverse("labels:add"))
    assert "<html" in page.text
    assert 'name="title"' in page.text


def test_submit_creates_the_label_closes_the_dialog_and_refreshes_the_table(manager_client):
    response = manager_client.post(
        reverse("labels:add"),
        {"title": "Intéressé par les produits", "name": "interesse_par_les_produits", "color": "green"},
        **HTMX,
    )
    assert response.status_code == 204
    assert _triggers(response) == {
        "closeModal": {},
        "labelsChanged": {},
        "showMessages": {"messages": [{"text": "Label “Intéressé par les produits” created.", "level": "success"}]},
    }
    label = Label.objects.get()
    assert (label.name, label.color) == ("interesse_par_les_produits", "green")


def test_without_javascript_submit_redirects_to_the_list_with_a_message(manager_client):
    response = manager_client.post(reverse("labels:add"), {"title": "VIP", "name": ""}, follow=True)
    assert response.redirect_chain == [(reverse("labels:list"), 302)]
    assert "Label “VIP” created." in response.text


def test_a_blank_name_is_generated_on_submit(manager_client, make_label):
    make_label("VIP", name="vip")
    manager_client.post(reverse("labels:add"), {"title": "V.I.P", "name": ""}, **HTMX)
    manager_client.post(reverse("labels:add"), {"title": "Vip!", "name": ""}, **HTMX)
    assert Label.objects.get(title="Vip!").name == "vip_2"


def test_a_duplicate_title_ignoring_case_is_refused(manager_client, make_label):
    make_label("Active users")
    response = manager_client.post(reverse("labels:add"), {"title": "ACTIVE USERS", "name": ""}, **HTMX)
    assert response.status_code == 422
    assert "A label with this title already exists." in response.text
    assert "<form" in response.text
    assert 'class="modal fade"' not in response.text  # only the form is swapped, the dialog stays open
    assert Label.objects.count() == 1


def test_a_taken_name_is_refused_on_submit(manager_client, make_label):
    make_label("Active users", name="active_users")
    response = manager_client.post(reverse("labels:add"), {"title": "Actives", "name": "active_users"}, **HTMX)
    assert "The name “active_users” is taken. “active_users_2” is free." in response.text
    assert Label.objects.count() == 1


def test_a_race_on_the_name_ends_in_one_label_and_a_form_error(manager_client, monkeypatch):
    validate = LabelForm.is_valid

    def valid_then_another_operator_creates_it(form):
        valid = validate(form)
        Label.objects.create(title="Fans of the product", name="fans")
        return valid

    monkeypatch.setattr(LabelForm, "is_valid", valid_then_another_operator_creates_it)
    response = manager_client.post(reverse("labels:add"), {"title": "Fans", "name": "fans"}, **HTMX)

    assert response.status_code == 422
    assert "Someone has just created a label named “fans”. “fans_2” is free." in response.text
    assert list(Label.objects.values_list("title", flat=True)) == ["Fans of the product"]


def test_a_race_on_the_title_ends_in_one_label_and_a_form_error(manager_client, monkeypatch):
    validate = LabelForm.is_valid

    def valid_then_another_operator_creates_it(form):
        valid = validate(form)
        Label.objects.create(title="FANS", name="fans_club")
        return valid

    monkeypatch.setattr(LabelForm, "is_valid", valid_then_another_operator_creates_it)
    response = manager_client.post(reverse("labels:add"), {"title": "Fans", "name": ""}, **HTMX)

    assert "Someone has just created a label with this title." in response.text
    assert Label.objects.count() == 1


# Edit ----------------------------------------------------------------------------------------------------------


def test_edit_opens_the_same_dialog_filled_in_and_warns_about_integrations(manager_client, make_label):
    label = make_label("Active users", description="Talked to us this month")
    response = manager_client.get(reverse("labels:edit", args=[label.pk]), **HTMX)
    assert _name_field(response) == "active_users"
    assert "Talked to us this month" in response.text
    assert "Integrations and conversation flows find this label by its name." in response.text
    assert "Regenerate name from title" in response.text


def test_edit_keeps_the_name_when_the_title_changes(manager_client, make_label):
    label = make_label("Active users")
    response = manager_client.post(
        reverse("labels:edit", args=[label.pk]), {"title": "Engaged users", "name": "active_users"}, **HTMX
    )
    assert response.status_code == 204
    assert _toasts(response) == ["Label “Engaged users” saved."]
    label.refresh_from_db()
    assert (label.title, label.name) == ("Engaged users", "active_users")


def test_regenerate_fills_in_the_name_from_the_title_without_saving(manager_client, make_label):
    label = make_label("Active users")
    make_label("Engaged users", name="engaged_users")
    response = manager_client.post(
        reverse("labels:edit", args=[label.pk]),
        {"title": "Engaged users!", "name": "active_users", "regenerate_name": "1"},
        **HTMX,
    )
    assert response.status_code == 200
    assert _name_field(response) == "engaged_users_2"
    assert "Saving changes the name from <code>active_users</code> to <code>engaged_users_2</code>." in response.text
    label.refresh_from_db()
    assert (label.title, label.name) == ("Active users", "active_users")


def test_regenerate_then_save_changes_the_name(manager_client, make_label):
    label = make_label("Active users")
    manager_client.post(
        reverse("labels:edit", args=[label.pk]), {"title": "Engaged users", "name": "engaged_users"}, **HTMX
    )
    label.refresh_from_db()
    assert label.name == "engaged_users"


def test_regenerate_keeps_its_own_name_free(manager_client, make_label):
    label = make_label("Active users")
    response = manager_client.post(
        reverse("labels:edit", args=[label.pk]), {"title": "Active users", "regenerate_name": "1"}, **HTMX
    )
    assert _name_field(response) == "active_users"


def test_edit_keeps_its_own_title_and_name_valid(manager_client, make_label):
    label = make_label("Active users")
    response = manager_client.post(
        reverse("labels:edit", args=[label.pk]), {"title": "active USERS", "name": "active_users"}, **HTMX
    )
    assert response.status_code == 204


def test_edit_refuses_another_labels_title(manager_client, make_label):
    label = make_label("Active users")
    make_label("VIP")
    response = manager_client.post(reverse("labels:edit", args=[label.pk]), {"title": "vip", "name": ""}, **HTMX)
    assert "A label with this title already exists." in response.text


def test_edit_of_a_missing_label_is_404(manager_client):
    assert manager_client.get(reverse("labels:edit", args=[999])).status_code == 404


# Delete --------------------------------------------------------------------------------------------------------

LONG_AGO = timezone.now() - timedelta(days=30)


@pytest.fixture
def active_users(make_label, messenger):
    """'Active users' carried by 1,204 subscribers, beside 'VIP' carried by two of them."""
    label, vip = make_label("Active users"), make_label("VIP")
    Subscriber.objects.bulk_create(
        Subscriber(channel=messenger, foreign_id=f"{kind}-{n}")
        for kind, count in [("carrier", 1_204), ("other", 6)]
        for n in range(count)
    )
    add_labels(Subscriber.objects.filter(foreign_id__startswith="carrier-"), [label])
    add_labels(Subscriber.objects.filter(foreign_id__in=["carrier-0", "other-0"]), [vip])
    Subscriber.objects.update(updated_at=LONG_AGO)
    return label


def test_delete_asks_first_and_says_what_it_will_do(manager_client, active_users):
    response = manager_client.get(reverse("labels:delete", args=[active_users.pk]), **HTMX)
    assert "Delete “Active users”? 1,204 subscribers will lose this label." in response.text
    assert Label.objects.filter(pk=active_users.pk).exists()


def test_delete_of_an_unused_label_says_so(manager_client, make_label):
    label = make_label("Nobody")
    response = manager_client.get(reverse("labels:delete", args=[label.pk]), **HTMX)
    assert "Delete “Nobody”? No subscriber carries it." in response.text


def test_delete_removes_the_label_and_its_assignments_only(manager_client, active_users):
    response = manager_client.post(reverse("labels:delete", args=[active_users.pk]), **HTMX)

    assert response.status_code == 204
    assert _toasts(response) == ["Label “Active users” deleted; 1,204 subscribers lost it."]
    assert list(Label.objects.values_list("name", flat=True)) == ["vip"]
    assert SubscriberLabel.objects.count() == 2
    assert not Subscriber.objects.filter(updated_at__gt=LONG_AGO).exists(), "labels are not the profile"


def test_after_delete_the_subscribers_page_no_longer_shows_the_label(manager_client, active_users):
    assert "Active users" in manager_client.get(reverse("subscribers:list")).text
    manager_client.post(reverse("labels:delete", args=[active_users.pk]), **HTMX)
    html = manager_client.get(reverse("subscribers:list")).text
    assert "Active users" not in html
    assert "VIP" in html


def test_delete_is_one_transaction_of_set_based_statements(active_users, make_label, make_subscriber):
    few = make_label("Few")
    add_labels(Subscriber.objects.filter(foreign_id__startswith="other-"), [few])

    with CaptureQueriesContext(connection) as many_carriers:
        assert delete_label(active_users).changed_subscribers == 1_204
    with CaptureQueriesContext(connection) as six_carriers:
        assert delete_label(few).changed_subscribers == 6

    # One transaction: a bulk removal (set-based statements per chunk of 5,000 ids, all of these carriers
    # in one), then one DELETE or UPDATE per table that refers to labels, and the label itself.
    # The same statements for 1,204 carriers as for 6: nothing loops over subscribers.
    statements = [query["sql"].split()[0] for query in many_carriers.captured_queries]
    assert statements[0] == "SAVEPOINT" and statements[-1] == "RELEASE"
    assert set(statements[1:-1]) <= {"SAVEPOINT", "RELEASE", "SELECT", "WITH", "UPDATE", "DELETE", "INSERT", "ANALYZE"}
    assert len(many_carriers) == len(six_carriers)
    operation = LabelOperation.objects.get(label_names=["few"], source="label_deleted")
    assert (operation.source, operation.members.count()) == ("label_deleted", 6)


# Permissions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["labels:add", "labels:edit", "labels:delete"])
def test_operators_cannot_add_change_or_delete(client, operator, make_label, view):
    label = make_label("VIP")
    client.force_login(operator)
    url = reverse(view) if view == "labels:add" else reverse(view, args=[label.pk])
    assert client.get(url, **HTMX).status_code == 403
    assert client.post(url, {"title": "Hacked", "name": "hacked"}, **HTMX).status_code == 403
    assert list(Label.objects.values_list("title", "name")) == [("VIP", "vip")]


def test_the_dialogs_require_login(client, make_label):
    label = make_label("VIP")
    for url in [reverse("labels:add"), reverse("labels:edit", args=[label.pk]), reverse("labels:name")]:
        assert client.get(url).status_code == 302


def test_a_generated_name_that_lags_behind_the_title_follows_it_on_submit(manager_client):
    manager_client.post(
        reverse("labels:add"), {"title": "Abandoned cart", "name": "abandoned_ca", "auto_name": "abandoned_ca"}, **HTMX
    )
    assert Label.objects.get().name == "abandoned_cart"


def test_a_name_typed_by_the_operator_is_kept_on_submit(manager_client):
    manager_client.post(
        reverse("labels:add"), {"title": "Abandoned cart", "name": "cart", "auto_name": "abandoned_cart"}, **HTMX
    )
    assert Label.objects.get().name == "cart"


def test_the_name_endpoint_accepts_the_edited_labels_own_name(manager_client, make_label):
    label = make_label("VIP", name="vip")
    response = _suggest(manager_client, label=label.pk, title="VIP customers", name="vip")
    assert _name_field(response) == "vip"
    assert "is-invalid" not in response.text


def test_without_javascript_delete_is_a_page_then_a_redirect(manager_client, active_users):
    page = manager_client.get(reverse("labels:delete", args=[active_users.pk]))
    assert "<html" in page.text
    assert "1,204 subscribers will lose this label." in page.text
    response = manager_client.post(reverse("labels:delete", args=[active_users.pk]), follow=True)
    assert response.redirect_chain == [(reverse("labels:list"), 302)]
    assert "Label “Active users” deleted; 1,204 subscribers lost it." in response.text
