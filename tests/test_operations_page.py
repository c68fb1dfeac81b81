"""The Bulk changes page: every bulk label change with its progress, cancel and undo."""

import pytest
from django.urls import reverse

from subscribers import actions
from subscribers.models import LabelOperation, LabelSource, SubscriberLabel

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def people(make_subscriber):
    return [make_subscriber() for _ in range(4)]


def _finished(people, labels, by):
    return actions.run_label_operation(
        actions.start_label_operation(
            "add", labels, by=by, source=LabelSource.BULK, selection={"filters": {}, "ids": [p.pk for p in people]}
        ).pk
    )


@pytest.mark.parametrize("operations", [1, 6])
def test_the_page_runs_the_same_queries_whatever_the_number_of_operations(
    client, operator, people, make_label, operations, django_assert_num_queries
):
    for n in range(operations):
        _finished(people, [make_label(f"Label {n}"), make_label(f"Other {n}")], operator)
    client.force_login(operator)
    # 1 session, 2 user, 3-4 the user's permissions (the decorator), 5 the operations with who made,
    # cancelled, undid or was undone by each, 6 their labels (prefetched).
    with django_assert_num_queries(6):
        response = client.get(reverse("subscribers:operations"))
    assert response.status_code == 200
    assert response.text.count("Undo</button>") == operations


def test_it_lists_what_each_change_did_with_undo_and_needs_the_view_permission(
    client, operator, nobody, people, make_label
):
    vip = make_label("VIP")
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    operation = _finished(people, [vip], operator)
    client.force_login(operator)
    html = client.get(reverse("subscribers:operations")).text
    assert "Added “VIP” to 3 subscribers (1 already had it)." in html
    assert reverse("subscribers:operation_undo", args=[operation.pk]) in html
    client.force_login(nobody)
    assert client.get(reverse("subscribers:operations")).status_code == 403


def test_undo_then_undo_of_the_undo_through_the_page(client, operator, people, make_label):
    vip = make_label("VIP")
    operation = _finished(people, [vip], operator)
    client.force_login(operator)

    response = client.post(reverse("subscribers:operation_undo", args=[operation.pk]), headers=HTMX)
    undo = LabelOperation.objects.get(undoes=operation)
    assert response.status_code == 200 and "This undoes" in response.text
    assert not SubscriberLabel.objects.exists()
    again = client.post(reverse("subscribers:operation_undo", args=[operation.pk]), headers=HTMX)
    assert "cannot be undone" in again.headers["HX-Trigger"], "a second undo is refused, with a toast"
    assert LabelOperation.objects.filter(undoes=operation).count() == 1
    client.post(reverse("subscribers:operation_undo", args=[undo.pk]))
    assert SubscriberLabel.objects.count() == len(people)


def test_cancel_stops_a_waiting_change_and_needs_the_change_permission(client, operator, nobody, people, make_label):
    operation = actions.start_label_operation("add", [make_label("VIP")], by=operator, source="bulk", selection={})
    client.force_login(nobody)
    assert client.post(reverse("subscribers:operation_cancel", args=[operation.pk])).status_code == 403
    client.force_login(operator)
    response = client.post(reverse("subscribers:operation_cancel", args=[operation.pk]))
    assert response.status_code == 302
    operation.refresh_from_db()
    assert (operation.status, operation.cancelled_by) == ("cancelled", operator)
    assert not SubscriberLabel.objects.exists()


def test_undo_on_the_changes_own_page_goes_to_the_undos_page(client, operator, people, make_label):
    """Its page's heading names the undone change: show the undo's page, as without JavaScript, not its block."""
    operation = _finished(people, [make_label("VIP")], operator)
    client.force_login(operator)
    page = f"http://testserver{operation.get_absolute_url()}?next=/subscribers/"
    response = client.post(
        reverse("subscribers:operation_undo", args=[operation.pk]), headers={**HTMX, "HX-Current-URL": page}
    )
    undo = LabelOperation.objects.get(undoes=operation)
    assert response.status_code == 200 and response["HX-Redirect"] == undo.get_absolute_url()
    assert not SubscriberLabel.objects.exists()

    html = client.get(response["HX-Redirect"]).text  # the page it goes to: the undo, with the message
    assert f"{undo} · Remove labels</h1>" in html
    assert f'This undoes <a href="{operation.get_absolute_url()}">{operation}</a>.' in html
    assert "Undone: Removed “VIP” from 4 subscribers" in html
    html = client.get(operation.get_absolute_url()).text
    assert f'Undone by <a href="{undo.get_absolute_url()}">{undo}</a>.' in html


@pytest.mark.parametrize("current", ["/subscribers/bulk-changes/", "/subscribers/?label=vip", None])
def test_undo_elsewhere_swaps_in_the_undos_status(client, operator, people, make_label, current):
    """The Bulk changes list (which then refreshes) and the bulk dialog show the undo's status block in place."""
    operation = _finished(people, [make_label("VIP")], operator)
    client.force_login(operator)
    headers = {**HTMX, "HX-Current-URL": f"http://testserver{current}"} if current else HTMX
    response = client.post(reverse("subscribers:operation_undo", args=[operation.pk]), headers=headers)
    undo = LabelOperation.objects.get(undoes=operation)
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert f'id="operation-{undo.pk}-status"' in response.text and "This undoes" in response.text
    assert "subscribers-changed" in response["HX-Trigger"]


def test_undo_of_another_change_from_a_changes_page_keeps_the_usual_answer(client, operator, people, make_label):
    """Only the undone change's own page is left: the undo's status block is for any other page."""
    first = _finished(people, [make_label("VIP")], operator)
    second = _finished(people, [make_label("Beta")], operator)
    client.force_login(operator)
    headers = {**HTMX, "HX-Current-URL": f"http://testserver{first.get_absolute_url()}"}
    response = client.post(reverse("subscribers:operation_undo", args=[second.pk]), headers=headers)
    assert "HX-Redirect" not in response and "This undoes" in response.text


def test_cancel_on_the_changes_own_page_keeps_its_page(client, operator, people, make_label):
    operation = actions.start_label_operation("add", [make_label("VIP")], by=operator, source="bulk", selection={})
    client.force_login(operator)
    headers = {**HTMX, "HX-Current-URL": f"http://testserver{operation.get_absolute_url()}"}
    response = client.post(reverse("subscribers:operation_cancel", args=[operation.pk]), headers=headers)
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert f'id="operation-{operation.pk}-status"' in response.text
    assert "Cancelled after 0 subscribers." in response.text


def test_the_action_buttons_have_ids_so_that_the_keyboard_stays_on_them_while_polling(
    client, operator, people, make_label
):
    running = actions.start_label_operation("add", [make_label("VIP")], by=operator, source="bulk", selection={})
    client.force_login(operator)
    status = client.get(running.get_absolute_url(), headers=HTMX).text
    assert f'id="operation-{running.pk}-cancel"' in status
    finished = _finished(people, [make_label("Beta")], operator)
    assert f'id="operation-{finished.pk}-undo"' in client.get(finished.get_absolute_url()).text
