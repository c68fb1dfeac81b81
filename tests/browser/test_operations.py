"""Bulk changes as an operator meets them: progress, cancel and undo on the Bulk changes page."""

import re

import pytest
from playwright.sync_api import expect

from subscribers import actions
from subscribers.models import LabelOperation, LabelSource, SubscriberLabel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def vip_for_everyone(make_subscriber, make_label, operator):
    """Five subscribers and a finished bulk change that gave four of them “VIP”."""
    vip = make_label("VIP", color="purple")
    people = [make_subscriber() for _ in range(5)]
    SubscriberLabel.objects.create(subscriber=people[0], label=vip)
    actions.add_labels(people, [vip], by=operator)
    return vip


def test_an_operator_undoes_a_bulk_change_and_then_the_undo(page, log_in, operator, vip_for_everyone, screenshot):
    log_in(operator)
    page.get_by_role("navigation").get_by_role("link", name="Bulk changes").click()
    expect(page.get_by_role("heading", name="Bulk changes")).to_be_visible()
    expect(page.get_by_text("Added “VIP” to 4 subscribers (1 already had it).")).to_be_visible()
    screenshot("bulk-changes")

    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("Removed “VIP” from 4 subscribers (0 did not have it).", exact=True)).to_be_visible()
    assert list(SubscriberLabel.objects.values_list("label", flat=True)) == [vip_for_everyone.pk], "the first kept it"

    page.reload()
    undo = LabelOperation.objects.get(source=LabelSource.UNDO)
    card = page.get_by_role("listitem").filter(has=page.get_by_role("link", name=str(undo), exact=True))
    expect(card.get_by_text(f"This undoes Bulk change #{undo.undoes_id}.")).to_be_visible()
    card.get_by_role("button", name="Undo").click()
    expect(page.get_by_text("Added “VIP” to 4 subscribers (0 already had it).", exact=True)).to_be_visible()
    assert SubscriberLabel.objects.count() == 5


def test_an_operator_watches_a_waiting_change_and_cancels_it(page, log_in, operator, make_subscriber, make_label):
    vip = make_label("VIP")
    for _ in range(3):
        make_subscriber()
    operation = actions.start_label_operation("add", [vip], by=operator, source=LabelSource.BULK, selection={})
    log_in(operator)
    page.goto(page.url.split("/subscribers/")[0] + operation.get_absolute_url())

    expect(page.get_by_role("status")).to_have_text("Waiting for a background worker…")
    expect(page.get_by_text("0 of 3 subscribers")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Progress")).to_be_visible()
    page.get_by_role("button", name="Cancel the change").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_text("Cancelled after 0 subscribers.")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel the change")).to_be_hidden()
    # The keyboard stays where it was: on the change's status, not dropped back to the top of the page.
    expect(page.locator(f"#operation-{operation.pk}-status")).to_be_focused()
    assert LabelOperation.objects.get().status == "cancelled"
    assert not SubscriberLabel.objects.exists()


def test_undo_on_a_changes_own_page_goes_to_the_undos_page(page, log_in, operator, vip_for_everyone, screenshot):
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    operation = LabelOperation.objects.get()
    log_in(operator)
    page.goto(operation.get_absolute_url())
    expect(page.get_by_role("heading", name=f"{operation} · Add labels")).to_be_visible()

    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("heading", name=re.compile(r"· Remove labels$"))).to_be_visible()
    undo = LabelOperation.objects.get(undoes=operation)
    expect(page).to_have_url(re.compile(rf"{re.escape(undo.get_absolute_url())}$"))
    expect(page.get_by_role("heading", name=f"{undo} · Remove labels")).to_be_visible()
    expect(page.get_by_role("heading", name=f"{operation} · Add labels")).to_have_count(0)
    expect(page.get_by_text("Removed “VIP” from 4 subscribers (0 did not have it).", exact=True)).to_be_visible()
    expect(page.get_by_text(f"This undoes {operation}.")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Undone: Removed “VIP”")).to_be_visible()
    screenshot("bulk-change-undone")
    assert list(SubscriberLabel.objects.values_list("label", flat=True)) == [vip_for_everyone.pk]

    page.get_by_role("link", name=str(operation), exact=True).last.click()
    expect(page.get_by_role("heading", name=f"{operation} · Add labels")).to_be_visible()
    expect(page.get_by_text(f"Undone by {undo}.")).to_be_visible()
    expect(page.get_by_role("button", name="Undo")).to_have_count(0)
    assert errors == []
