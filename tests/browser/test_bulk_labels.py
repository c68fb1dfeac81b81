import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from subscribers.actions import add_labels
from subscribers.models import LabelOperation, Subscriber, SubscriberLabel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audience(make_subscriber, make_label):
    """30 VIP subscribers (Ada Lovelace the oldest, already a beta tester) and 5 others."""
    vip = make_label("VIP", color="purple")
    beta = make_label("Beta testers", color="teal")
    make_label("Newsletter", color="indigo")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    people = [
        make_subscriber(first_name="Ada", last_name="Lovelace", created_at=start),
        *[make_subscriber(created_at=start + timedelta(days=n)) for n in range(1, 30)],
    ]
    add_labels(Subscriber.objects.filter(pk__in=[p.pk for p in people]), [vip])
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [beta])
    for n in range(5):
        make_subscriber(first_name="Other", last_name=f"Person{n}", created_at=start + timedelta(days=40 + n))
    return people


def row_of(page, name):
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))


def beta_testers():
    return SubscriberLabel.objects.filter(label__name="beta_testers").count()


def test_an_operator_adds_a_label_to_all_subscribers_matching_a_filter(page, log_in, operator, audience, screenshot):
    log_in(operator)
    page.get_by_role("search", name="Filter subscribers").get_by_text("Labels", exact=True).first.click()
    page.get_by_role("checkbox", name="VIP").check()
    expect(page).to_have_url(re.compile(r"\?label=vip$"))
    expect(page.get_by_text("1\u201325 of 30 subscribers")).to_be_visible()
    page.keyboard.press("Escape")

    bar = page.get_by_role("region", name="Selected subscribers")
    expect(bar).to_be_hidden()
    page.get_by_role("checkbox", name="Select all on this page").check()
    expect(bar).to_be_visible()
    expect(bar.get_by_text("25 subscribers selected")).to_be_visible()
    page.get_by_role("button", name="Select all 30 subscribers matching this filter").click()
    expect(bar.get_by_text("30 subscribers selected")).to_be_visible()
    expect(page.get_by_text("All 30 subscribers matching this filter are selected.")).to_be_visible()
    expect(page.get_by_role("button", name="Clear selection")).to_be_visible()
    screenshot("bulk-selection")

    bar.get_by_role("button", name="Add labels…").click()
    dialog = page.get_by_role("dialog", name="Add labels")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("All subscribers matching the table's filter")).to_be_visible()
    dialog.get_by_role("searchbox", name="Find a label").fill("beta")
    expect(dialog.get_by_role("checkbox", name="Newsletter")).to_be_hidden()
    dialog.get_by_role("checkbox", name="Beta testers").check()
    screenshot("bulk-pick-labels")
    dialog.get_by_role("button", name="Continue").click()

    expect(dialog.get_by_text("Add “Beta testers” to 30 subscribers?")).to_be_visible()
    expect(dialog.get_by_text("29 of them get it; 1 already has it.")).to_be_visible()
    screenshot("bulk-confirm")
    assert beta_testers() == 1  # nothing changed before the confirmation
    dialog.get_by_role("button", name="Add labels").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Added “Beta testers” to 29 subscribers (1 already had it).")).to_be_visible()
    expect(bar).to_be_hidden()  # the table was refreshed, the selection cleared
    for row in page.get_by_role("row").filter(has=page.get_by_role("checkbox")).all()[1:]:
        expect(row.get_by_text("Beta testers")).to_be_visible()
    assert beta_testers() == 30
    operation = LabelOperation.objects.get(created_by=operator)
    assert operation.changed_subscribers == 29 and operation.members.count() == 29


def test_ticked_rows_only_and_an_empty_label_choice(page, log_in, operator, audience):
    log_in(operator)
    page.goto("/subscribers/?sort=created")
    page.get_by_role("checkbox", name="Select Ada Lovelace").check()
    page.get_by_role("checkbox", name="Select First2 Last2").check()
    bar = page.get_by_role("region", name="Selected subscribers")
    expect(bar.get_by_text("2 subscribers selected")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Select all on this page")).to_have_js_property("indeterminate", True)
    bar.get_by_role("button", name="Remove labels…").click()
    dialog = page.get_by_role("dialog", name="Remove labels")
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog.get_by_text("Pick at least one label. Nothing was changed.")).to_be_visible()
    dialog.get_by_role("checkbox", name="VIP").check()
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog.get_by_text("Remove “VIP” from 2 subscribers?")).to_be_visible()
    dialog.get_by_role("button", name="Remove labels").click()
    expect(page.get_by_text("Removed “VIP” from 2 subscribers (0 did not have it).")).to_be_visible()
    expect(row_of(page, "Ada Lovelace").get_by_text("VIP")).to_have_count(0)
    expect(row_of(page, "First3 Last3").get_by_text("VIP")).to_be_visible()


def test_the_same_flow_with_the_keyboard_only(page, log_in, operator, audience):
    log_in(operator)
    page.goto("/subscribers/?label=vip&sort=created")
    page.get_by_role("checkbox", name="Select all on this page").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Select all 30 subscribers matching this filter")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Clear selection")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Export…")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Add labels…")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Add labels")
    expect(dialog.get_by_role("searchbox", name="Find a label")).to_be_focused()
    page.keyboard.type("news")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("checkbox", name="Newsletter")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Continue")).to_be_focused()
    page.keyboard.press("Enter")
    confirm = dialog.get_by_role("button", name="Add labels")
    expect(confirm).to_be_focused()
    expect(dialog.get_by_text("Add “Newsletter” to 30 subscribers?")).to_be_visible()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Added “Newsletter” to 30 subscribers (0 already had it).")).to_be_visible()
    expect(row_of(page, "Ada Lovelace").get_by_text("Newsletter")).to_be_visible()
    # The keyboard is back in the table.
    expect(page.get_by_role("checkbox", name="Select all on this page")).to_be_focused()


def test_escape_closes_the_dialog_and_changes_nothing(page, log_in, operator, audience):
    log_in(operator)
    page.goto("/subscribers/?sort=created")
    page.get_by_role("checkbox", name="Select Ada Lovelace").check()
    page.get_by_role("button", name="Add labels…").click()
    dialog = page.get_by_role("dialog", name="Add labels")
    dialog.get_by_role("checkbox", name="Newsletter").check()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Add labels…")).to_be_focused()
    assert not LabelOperation.objects.filter(created_by=operator).exists(), "only the fixture's own"


def test_on_a_phone_the_bar_and_dialogs_fit(page, log_in, operator, audience, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(operator)
    page.goto("/subscribers/?label=vip&sort=created")
    page.get_by_role("checkbox", name="Select all on this page").check()
    page.get_by_role("button", name="Select all 30 subscribers matching this filter").click()
    screenshot("bulk-selection-phone")
    page.get_by_role("button", name="Add labels…").click()
    dialog = page.get_by_role("dialog", name="Add labels")
    dialog.get_by_role("checkbox", name="Beta testers").check()
    screenshot("bulk-pick-labels-phone")
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog.get_by_text("Add “Beta testers” to 30 subscribers?")).to_be_visible()
    screenshot("bulk-confirm-phone")


def test_without_javascript_the_bulk_action_is_a_plain_form_flow(operator_without_javascript, audience):
    page = operator_without_javascript
    page.goto("/subscribers/?label=vip&sort=created")
    page.get_by_role("checkbox", name="Select all 30 subscribers matching this filter").check()
    page.get_by_role("button", name="Add labels…").click()
    page.get_by_role("checkbox", name="Newsletter").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("Add “Newsletter” to 30 subscribers?")).to_be_visible()
    page.get_by_role("button", name="Add labels").click()
    expect(page).to_have_url(re.compile(r"/subscribers/\?label=vip&sort=created$"))
    expect(page.get_by_text("Added “Newsletter” to 30 subscribers (0 already had it).")).to_be_visible()
    expect(row_of(page, "Ada Lovelace").get_by_text("Newsletter")).to_be_visible()


def _add_newsletter_to_all_30_in_the_background(page, log_in, operator, settings):
    """Starts "Add Newsletter" on all 30 VIPs, over the background threshold, with no worker: the dialog waits."""
    settings.BULK_BACKGROUND_THRESHOLD = 10
    log_in(operator)
    page.goto("/subscribers/?label=vip&sort=created")
    page.get_by_role("checkbox", name="Select all on this page").check()
    page.get_by_role("button", name="Select all 30 subscribers matching this filter").click()
    page.get_by_role("button", name="Add labels…").click()
    dialog = page.get_by_role("dialog", name="Add labels")
    dialog.get_by_role("checkbox", name="Newsletter").check()
    dialog.get_by_role("button", name="Continue").click()
    dialog.get_by_role("button", name="Add labels").click()
    expect(dialog.get_by_text("Waiting for a background worker…")).to_be_visible()
    return dialog


def test_a_large_selection_shows_progress_then_the_result(page, log_in, operator, audience, settings, screenshot):
    from subscribers import actions

    dialog = _add_newsletter_to_all_30_in_the_background(page, log_in, operator, settings)
    expect(dialog.get_by_text("0 of 30 subscribers")).to_be_visible()
    screenshot("bulk-progress")

    # What `manage.py db_worker` does; the dialog, polling every second, then shows the result.
    actions.continue_label_operation.call(LabelOperation.objects.get(created_by=operator).pk)
    expect(dialog.get_by_text("Added “Newsletter” to 30 subscribers (0 already had it).")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Added “Newsletter”").last).to_be_visible()
    screenshot("bulk-done")
    dialog.get_by_role("button", name="Close").last.click()
    expect(dialog).to_be_hidden()
    expect(row_of(page, "Ada Lovelace").get_by_text("Newsletter")).to_be_visible()


def test_cancelling_a_change_in_the_dialog_keeps_the_keyboard_in_the_dialog(page, log_in, operator, audience, settings):
    dialog = _add_newsletter_to_all_30_in_the_background(page, log_in, operator, settings)

    # The dialog polls every second: the keyboard stays on the button it replaces meanwhile. (First the step
    # settles and puts the keyboard on its main control; only then does the operator move it.)
    expect(dialog.locator(":focus")).to_have_count(1)
    cancel = dialog.get_by_role("button", name="Cancel the change")
    cancel.focus()
    page.wait_for_timeout(1500)
    expect(cancel).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog.get_by_text("Cancelled after 0 subscribers.")).to_be_visible()
    expect(cancel).to_be_hidden()
    close = dialog.get_by_role("button", name="Close").last
    expect(close).to_have_text("Close")
    expect(close).to_be_focused()
    assert LabelOperation.objects.get(created_by=operator).status == "cancelled"
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()


def test_back_and_forward_through_the_pages_raise_no_script_error(page, log_in, operator, audience):
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    log_in(operator)
    page.goto("/subscribers/?sort=created")
    expect(page.get_by_text("1\u201325 of 35 subscribers")).to_be_visible()
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"sort=created&page=2$"))
    expect(page.get_by_text("26\u201335 of 35 subscribers")).to_be_visible()

    page.go_back()
    expect(page).to_have_url(re.compile(r"sort=created$"))
    expect(page.get_by_text("1\u201325 of 35 subscribers")).to_be_visible()
    page.go_forward()
    expect(page.get_by_text("26\u201335 of 35 subscribers")).to_be_visible()
    page.go_back()
    expect(page.get_by_text("1\u201325 of 35 subscribers")).to_be_visible()
    assert errors == []

    # And the page still works: a dialog opens and takes the keyboard.
    page.get_by_role("checkbox", name="Select all on this page").check()
    page.get_by_role("button", name="Add labels…").click()
    dialog = page.get_by_role("dialog", name="Add labels")
    expect(dialog.get_by_role("searchbox", name="Find a label")).to_be_focused()
    assert errors == []
