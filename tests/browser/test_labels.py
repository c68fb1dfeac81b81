import re

import pytest
from playwright.sync_api import expect

from labels.models import Label
from subscribers.actions import add_labels
from subscribers.models import Subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLE = "Intéressé par les produits"
NO_SCROLLING = "document.querySelector('#labels').scrollWidth <= document.querySelector('.table-container').clientWidth"


def _count_link(page, title):
    return page.get_by_role("link", name=f"Subscribers with the label {title}", exact=True)


def test_a_label_manager_adds_a_label_and_sees_it_counted(page, log_in, label_manager, make_subscriber, screenshot):
    ada = make_subscriber(first_name="Ada", last_name="Lovelace")
    log_in(label_manager)
    page.goto("/labels/")
    screenshot("labels-empty")

    page.get_by_role("button", name="Add").click()
    dialog = page.get_by_role("dialog", name="Add a label")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Title").press_sequentially(TITLE, delay=20)
    expect(dialog.get_by_label("Name")).to_have_value("interesse_par_les_produits")
    dialog.get_by_text("Green", exact=True).click()
    screenshot("labels-add-dialog")
    dialog.get_by_role("button", name="Submit").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text=f"Label “{TITLE}” created.")).to_be_visible()
    expect(_count_link(page, TITLE)).to_have_text("0")
    expect(
        page.get_by_role("row", name=re.compile(TITLE)).get_by_text("interesse_par_les_produits").filter(visible=True)
    ).to_be_visible()

    # Give it to Ada with the Subscribers page's "Manage labels" dialog.
    page.get_by_role("navigation", name="Side menu").get_by_role("link", name="Subscribers").click()
    ada_row = page.get_by_role("row", name=re.compile("Ada Lovelace"))
    ada_row.get_by_role("button", name="Manage labels of Ada Lovelace").click()
    manage = page.get_by_role("dialog", name="Manage labels")
    manage.get_by_role("checkbox", name=TITLE).check()
    manage.get_by_role("button", name="Submit").click()
    expect(manage).to_be_hidden()
    expect(ada_row.get_by_text(TITLE)).to_be_visible()

    page.get_by_role("navigation", name="Side menu").get_by_role("link", name="Labels").click()
    expect(_count_link(page, TITLE)).to_have_text("1")
    screenshot("labels-after-assignment")
    assert page.evaluate(NO_SCROLLING), "the table needs scrolling"
    _count_link(page, TITLE).click()
    expect(page).to_have_url(re.compile(r"/subscribers/\?label=interesse_par_les_produits$"))
    expect(page.get_by_role("row", name=re.compile("Ada Lovelace"))).to_be_visible()
    assert list(Subscriber.objects.get(pk=ada.pk).labels.values_list("name", flat=True)) == [
        "interesse_par_les_produits"
    ]


def test_the_dialog_explains_a_taken_name(page, log_in, label_manager, make_label):
    make_label("VIP", name="vip")
    log_in(label_manager)
    page.goto("/labels/")
    page.get_by_role("button", name="Add").click()
    dialog = page.get_by_role("dialog", name="Add a label")
    dialog.get_by_label("Title").press_sequentially("Vip!")
    name = dialog.get_by_label("Name")
    expect(name).to_have_value("vip_2")

    name.fill("vip")
    dialog.get_by_label("Description").focus()
    expect(dialog.get_by_text("The name “vip” is taken. “vip_2” is free.")).to_be_visible()
    dialog.get_by_label("Title").press_sequentially(" customers")
    expect(name).to_have_value("vip")  # the operator's own name is not overwritten

    dialog.get_by_role("button", name="Submit").click()
    expect(dialog.get_by_text("The name “vip” is taken. “vip_2” is free.")).to_be_visible()
    expect(name).to_be_focused()
    assert Label.objects.count() == 1


def test_the_add_dialog_works_with_the_keyboard_only(page, log_in, label_manager):
    log_in(label_manager)
    page.goto("/labels/")
    add = page.get_by_role("button", name="Add")
    add.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Add a label")
    expect(dialog.get_by_label("Title")).to_be_focused()

    page.keyboard.type("VIP customers")
    expect(dialog.get_by_label("Name")).to_have_value("vip_customers")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Description")).to_be_focused()
    page.keyboard.type("More than five orders")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("No colour")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(dialog.get_by_label("Blue")).to_be_checked()
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Group")).to_be_focused()  # label groups (issue 14): "No group" stays chosen
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("link", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Submit")).to_be_focused()
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    expect(_count_link(page, "VIP customers")).to_have_text("0")
    expect(add).to_be_focused()
    label = Label.objects.get()
    assert (label.name, label.description, label.color) == ("vip_customers", "More than five orders", "blue")

    # Escape closes the dialog without saving and gives the keyboard back to the Add button.
    page.keyboard.press("Enter")
    expect(dialog.get_by_label("Title")).to_be_focused()
    page.keyboard.type("Never saved")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(add).to_be_focused()
    assert Label.objects.count() == 1


def test_a_label_manager_edits_and_deletes_a_label(
    page, log_in, label_manager, make_label, make_subscriber, screenshot
):
    label = make_label("Active users", color="green", description="Talked to the bot in the last 30 days.")
    add_labels(Subscriber.objects.filter(pk__in=[make_subscriber().pk, make_subscriber().pk]), [label])
    log_in(label_manager)
    page.goto("/labels/")

    page.get_by_role("button", name="Edit “Active users”").click()
    dialog = page.get_by_role("dialog", name="Edit a label")
    dialog.get_by_label("Title").fill("Engaged users")
    expect(dialog.get_by_label("Name")).to_have_value("active_users")
    expect(dialog.get_by_text("Integrations and conversation flows find this label by its name.")).to_be_visible()
    dialog.get_by_role("button", name="Regenerate name from title").click()
    expect(dialog.get_by_label("Name")).to_have_value("engaged_users")
    expect(dialog.get_by_text("Saving changes the name from active_users to engaged_users.")).to_be_visible()
    page.wait_for_timeout(400)
    screenshot("labels-edit-dialog")
    dialog.get_by_role("button", name="Save").click()

    expect(dialog).to_be_hidden()
    row = page.get_by_role("row", name=re.compile("Engaged users"))
    expect(row.get_by_text("engaged_users").filter(visible=True)).to_be_visible()
    expect(page.get_by_role("button", name="Edit “Engaged users”")).to_be_focused()

    page.get_by_role("button", name="Delete “Engaged users”").click()
    dialog = page.get_by_role("dialog", name="Delete a label")
    expect(dialog.get_by_text("Delete “Engaged users”? 2 subscribers will lose this label.")).to_be_visible()
    page.wait_for_timeout(400)  # let the dialog finish fading in
    screenshot("labels-delete-dialog")
    dialog.get_by_role("button", name="Delete").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Label “Engaged users” deleted; 2 subscribers lost it.")).to_be_visible()
    expect(page.get_by_text("No labels yet. Use Add to create the first one.")).to_be_visible()
    expect(page.get_by_role("heading", name="Labels")).to_be_focused()


def test_an_operator_sees_labels_without_the_buttons(page, log_in, operator, make_label):
    make_label("VIP", color="purple")
    log_in(operator)
    page.goto("/labels/")
    expect(_count_link(page, "VIP")).to_have_text("0")
    expect(page.get_by_role("button", name="Add")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit “VIP”")).to_have_count(0)


def test_sorting_and_search_update_the_table_in_place(page, log_in, operator, make_label, make_subscriber):
    vip, active = make_label("VIP"), make_label("Active users")
    make_label("Support")
    add_labels(Subscriber.objects.filter(pk__in=[make_subscriber().pk for _ in range(3)]), [vip])
    add_labels(Subscriber.objects.filter(pk=make_subscriber().pk), [active])
    log_in(operator)
    page.goto("/labels/")
    titles = page.locator("#labels tbody tr .label-chip")
    expect(titles).to_have_text(["Active users", "Support", "VIP"])

    headers = page.locator("#labels thead")
    headers.get_by_role("link", name="Subscribers").click()
    expect(titles).to_have_text(["Support", "Active users", "VIP"])
    headers.get_by_role("link", name="Subscribers").click()
    expect(titles).to_have_text(["VIP", "Active users", "Support"])
    expect(page).to_have_url(re.compile(r"sort=-subscriber_count"))

    page.get_by_role("searchbox", name="Search labels by title or name").fill("sup")
    expect(titles).to_have_text(["Support"])
    expect(page).to_have_url(re.compile(r"q=sup"))


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_the_page_and_the_dialog(
    page, log_in, label_manager, make_label, make_subscriber, screenshot, width
):
    page.set_viewport_size({"width": width, "height": 900 if width > 400 else 844})
    demo = [
        ("Interested in products", "blue", "Users who showed interest in specific products."),
        ("Needs customer support", "red", "Users who asked for customer support."),
        ("Active users", "green", "Users who talked to the chatbot in the last 30 days."),
        ("VIP customers", "purple", "Customers with more than five orders."),
        ("Beta testers", "teal", ""),
    ]
    labels = [make_label(title, color=color, description=text) for title, color, text in demo]
    ids = [make_subscriber().pk for _ in range(12)]
    add_labels(Subscriber.objects.filter(pk__in=ids), labels[2:4])
    add_labels(Subscriber.objects.filter(pk__in=ids[:5]), labels[:1])
    log_in(label_manager)
    page.goto("/labels/")
    expect(_count_link(page, "Active users")).to_have_text("12")
    screenshot(f"labels-page-{width}")
    assert page.evaluate(NO_SCROLLING), "the table needs scrolling"

    page.get_by_role("button", name="Add").click()
    dialog = page.get_by_role("dialog", name="Add a label")
    dialog.get_by_label("Title").press_sequentially("Abandoned cart")
    expect(dialog.get_by_label("Name")).to_have_value("abandoned_cart")
    dialog.get_by_text("Orange", exact=True).click()
    page.wait_for_timeout(400)  # let the dialog finish fading in
    screenshot(f"labels-add-dialog-{width}")
    dialog.get_by_label("Title").fill("active USERS")
    dialog.get_by_role("button", name="Submit").click()
    expect(dialog.get_by_text("A label with this title already exists.")).to_be_visible()
    screenshot(f"labels-add-dialog-error-{width}")
