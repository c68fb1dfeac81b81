import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from subscribers.actions import add_labels
from subscribers.models import Subscriber, SubscriberLabel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audience(make_subscriber, make_label):
    """30 subscribers with the VIP label (Ada Lovelace the oldest), and a few others."""
    vip = make_label("VIP", color="purple")
    news = make_label("Newsletter", color="indigo")
    make_label("Beta testers", color="teal")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    people = [
        make_subscriber(first_name="Ada", last_name="Lovelace", created_at=start, gender="female"),
        *[make_subscriber(created_at=start + timedelta(days=n)) for n in range(1, 30)],
    ]
    add_labels(Subscriber.objects.filter(pk__in=[p.pk for p in people]), [vip])
    add_labels(Subscriber.objects.filter(pk=people[0].pk), [news])
    for n in range(5):
        make_subscriber(first_name="Other", last_name=f"Person{n}", created_at=start + timedelta(days=40 + n))
    return people[0]


def ada_row(page):
    return page.get_by_role("row").filter(has=page.get_by_role("link", name="Ada Lovelace"))


def test_an_operator_filters_sorts_pages_and_manages_labels(page, log_in, operator, audience, screenshot):
    log_in(operator)
    expect(page.get_by_role("heading", name="Subscribers")).to_be_visible()
    expect(page.get_by_text("1\u201325 of 35 subscribers")).to_be_visible()
    screenshot("subscribers-list")

    page.get_by_role("search", name="Filter subscribers").get_by_text("Labels", exact=True).first.click()
    page.get_by_role("checkbox", name="VIP").check()
    expect(page).to_have_url(re.compile(r"\?label=vip$"))
    expect(page.get_by_text("1\u201325 of 30 subscribers")).to_be_visible()

    page.keyboard.press("Escape")  # closes the Labels menu
    page.get_by_role("link", name="Created").click()
    expect(page).to_have_url(re.compile(r"label=vip&sort=created$"))
    expect(page.get_by_role("link", name="Created (sorted ascending)")).to_be_visible()
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"label=vip&sort=created&page=2$"))
    expect(page.get_by_text("26\u201330 of 30 subscribers")).to_be_visible()
    # Back on page 1, Ada, the oldest, comes first.
    page.go_back()
    expect(page.get_by_text("1\u201325 of 30 subscribers")).to_be_visible()
    expect(ada_row(page)).to_be_visible()

    ada_row(page).get_by_role("button", name="Manage labels of Ada Lovelace").click()
    dialog = page.get_by_role("dialog", name="Manage labels")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("textbox", name="Subscriber")).to_have_value("Ada Lovelace")
    dialog.get_by_role("searchbox", name="Find a label").fill("beta")
    expect(dialog.get_by_role("checkbox", name="VIP")).to_be_hidden()
    dialog.get_by_role("checkbox", name="Beta testers").check()
    dialog.get_by_role("searchbox", name="Find a label").fill("")
    dialog.get_by_role("checkbox", name="Newsletter").uncheck()
    screenshot("subscribers-manage-labels")
    dialog.get_by_role("button", name="Submit").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Labels updated for Ada Lovelace")).to_be_visible()
    expect(ada_row(page).get_by_text("Beta testers")).to_be_visible()
    expect(ada_row(page).get_by_text("Newsletter")).to_have_count(0)
    page.reload()
    expect(ada_row(page).get_by_text("Beta testers")).to_be_visible()
    expect(ada_row(page).get_by_text("Newsletter")).to_have_count(0)
    assert set(audience.labels.values_list("name", flat=True)) == {"vip", "beta_testers"}
    assert SubscriberLabel.objects.get(subscriber=audience, label__name="beta_testers").assigned_by == operator


def test_the_same_flow_with_the_keyboard_only(page, log_in, operator, audience):
    log_in(operator)
    page.goto("/subscribers/?label=vip&sort=created")
    button = ada_row(page).get_by_role("button", name="Manage labels of Ada Lovelace")
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Manage labels")
    expect(dialog).to_be_visible()
    finder = dialog.get_by_role("searchbox", name="Find a label")
    expect(finder).to_be_focused()
    page.keyboard.type("beta")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("checkbox", name="Beta testers")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type("news")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("checkbox", name="Newsletter")).to_be_focused()
    page.keyboard.press("Space")
    dialog.get_by_role("button", name="Submit").focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(ada_row(page).get_by_text("Beta testers")).to_be_visible()
    expect(ada_row(page).get_by_text("Newsletter")).to_have_count(0)
    # Focus returns to the row's button.
    expect(ada_row(page).get_by_role("button", name="Manage labels of Ada Lovelace")).to_be_focused()
    page.reload()
    expect(ada_row(page).get_by_text("Beta testers")).to_be_visible()


def test_escape_closes_the_dialog_without_change(page, log_in, operator, audience):
    log_in(operator)
    ada_button = ada_row(page).get_by_role("button", name="Manage labels of Ada Lovelace")
    page.goto("/subscribers/?sort=created")
    ada_button.click()
    dialog = page.get_by_role("dialog", name="Manage labels")
    dialog.get_by_role("checkbox", name="VIP").uncheck()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(ada_button).to_be_focused()
    assert audience.labels.filter(name="vip").exists()


def test_on_a_phone_the_table_and_dialog_fit(page, log_in, operator, audience, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(operator)
    expect(page.get_by_text("1\u201325 of 35 subscribers")).to_be_visible()
    screenshot("subscribers-list-phone")
    page.goto("/subscribers/?sort=created")
    ada_row(page).get_by_role("button", name="Manage labels of Ada Lovelace").click()
    expect(page.get_by_role("dialog", name="Manage labels")).to_be_visible()
    screenshot("subscribers-manage-labels-phone")


def test_the_detail_page(page, log_in, operator, audience, screenshot):
    log_in(operator)
    page.goto("/subscribers/?sort=created")
    page.get_by_role("link", name="Ada Lovelace", exact=True).click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    expect(page.get_by_text(audience.foreign_id)).to_be_visible()
    page.get_by_role("button", name="Manage labels").click()
    dialog = page.get_by_role("dialog", name="Manage labels")
    dialog.get_by_role("checkbox", name="Beta testers").check()
    dialog.get_by_role("button", name="Submit").click()
    expect(dialog).to_be_hidden()
    labels = page.get_by_role("region", name="Labels")
    expect(labels.get_by_text("Beta testers")).to_be_visible()
    expect(labels.get_by_text("by Olivia")).to_be_visible()
    screenshot("subscriber-detail")


def test_without_javascript_filters_and_the_labels_form_still_work(operator_without_javascript, audience):
    page = operator_without_javascript
    page.goto("/subscribers/?label=vip&sort=created")
    expect(page.get_by_text("1\u201325 of 30 subscribers")).to_be_visible()
    ada_row(page).get_by_role("link", name="Manage labels of Ada Lovelace").click()
    page.get_by_role("checkbox", name="Beta testers").check()
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/subscribers/\?label=vip&sort=created$"))
    expect(page.get_by_text("Labels updated for Ada Lovelace")).to_be_visible()
    expect(ada_row(page).get_by_text("Beta testers")).to_be_visible()
