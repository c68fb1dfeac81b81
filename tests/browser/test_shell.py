import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_logs_in_and_finds_the_side_menu(page, log_in, operator, screenshot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    screenshot("login")

    log_in(operator)

    expect(page).to_have_url(re.compile(r"/subscribers/$"))
    menu = page.get_by_role("navigation", name="Side menu")
    expect(menu.get_by_text("Manage subscribers")).to_be_visible()
    expect(menu.get_by_role("link", name="Subscribers")).to_have_attribute("aria-current", "page")
    expect(menu.get_by_role("link", name="Administration")).to_have_count(0)
    screenshot("subscribers-placeholder")

    menu.get_by_role("link", name="Labels").click()
    expect(page.get_by_role("heading", name="Labels")).to_be_visible()


def test_a_wrong_password_is_explained(page, operator):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("olivia")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Please enter a correct username and password")).to_be_visible()


def test_the_user_menu_logs_out(page, log_in, operator):
    log_in(operator)
    page.get_by_role("button", name="Olivia").click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/subscribers/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_on_a_phone_the_side_menu_opens_from_a_button(page, log_in, operator, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(operator)
    menu = page.get_by_role("navigation", name="Side menu")
    expect(menu.get_by_role("link", name="Labels")).to_be_hidden()
    page.get_by_role("button", name="Open the menu").click()
    # Opened on a small screen, the menu is a dialog over the page.
    expect(page.get_by_role("dialog", name="Side menu").get_by_role("link", name="Labels")).to_be_visible()
    screenshot("side-menu-phone")
