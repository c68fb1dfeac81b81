import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _collect_csp_violations(page):
    violations = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    return violations


def test_staff_open_the_api_docs_from_the_side_menu(page, log_in, admin_user, screenshot):
    violations = _collect_csp_violations(page)
    log_in(admin_user)

    page.get_by_role("navigation", name="Side menu").get_by_role("link", name="API docs").click()

    expect(page).to_have_url(re.compile(r"/api/v1/docs$"))
    expect(page.get_by_role("heading", name=re.compile("Hexasubs bot API"))).to_be_visible()
    expect(page.get_by_text("/api/v1/channels/{channel}/subscribers/{foreign_id}").first).to_be_visible()
    page.get_by_role("button", name="Authorize").first.click()
    expect(page.get_by_role("heading", name="Available authorizations")).to_be_visible()
    page.get_by_role("button", name="Close").click()
    assert violations == []
    screenshot("api-docs")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("api-docs-390")


def test_staff_create_an_api_key_and_copy_it_once(page, log_in, admin_user, screenshot):
    log_in(admin_user)
    page.goto("/admin/api/apikey/add/")
    page.get_by_label("Name").fill("Messenger bot")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("will not be shown again")).to_be_visible()
    key = page.get_by_label("API key").input_value()
    assert re.fullmatch(r"hxs_[0-9a-f]{12}_[A-Za-z0-9-]+", key)
    screenshot("api-key-created")

    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("link", name="Messenger bot")).to_be_visible()
    expect(page.get_by_text(key)).to_have_count(0)
    screenshot("api-key-list")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("api-key-list-390")


def test_non_staff_see_no_docs_link(page, log_in, operator):
    log_in(operator)
    expect(page.get_by_role("link", name="API docs")).to_have_count(0)
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile("Hexasubs bot API"))).to_have_count(0)
