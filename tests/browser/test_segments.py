"""Saved segments in the browser (issue 14): save a filter as a segment, open it from the side menu, see the
same rows; in English and in French, and at 390 px."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from subscribers.actions import add_labels
from subscribers.models import Subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

WORDS = {
    "en-US": {
        "username": "Username",
        "password": "Password",
        "log_in": "Log in",
        "filter": "Filter subscribers",
        "labels": "Labels",
        "save_as": "Save as segment…",
        "dialog": "Save as segment",
        "name": "Name",
        "description": "Description",
        "save": "Save",
        "menu": "Side menu",
        "open_menu": "Open the menu",
        "count": "1\u20133 of 3 subscribers",
        "segments": "Segments",
        "all": "All segments",
        "three": "3 subscribers",
    },
    "fr-FR": {
        "username": "Nom d\u2019utilisateur",
        "password": "Mot de passe",
        "log_in": "Se connecter",
        "filter": "Filtrer les abonnés",
        "labels": "Étiquettes",
        "save_as": "Enregistrer comme segment…",
        "dialog": "Enregistrer comme segment",
        "name": "Nom",
        "description": "Description",
        "save": "Enregistrer",
        "menu": "Menu latéral",
        "open_menu": "Ouvrir le menu",
        "count": "1\u20133 sur 3 abonnés",
        "segments": "Segments",
        "all": "Tous les segments",
        "three": "3\u00a0abonnés",
    },
}


@pytest.fixture
def people(make_subscriber, make_label):
    vip = make_label("VIP", name="vip", color="purple")
    make_label("Newsletter", name="newsletter")
    chosen = [make_subscriber(first_name=name, last_name="Lovelace") for name in ("Ada", "Bea", "Cy")]
    for n in range(4):
        make_subscriber(first_name="Other", last_name=f"Person{n}")
    add_labels(Subscriber.objects.filter(pk__in=[p.pk for p in chosen]), [vip])
    return chosen


@pytest.fixture
def open_page(browser, live_server):
    contexts = []

    def open_page(user, locale, width=1280):
        context = browser.new_context(
            base_url=live_server.url, locale=locale, viewport={"width": width, "height": 900 if width > 500 else 844}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        words = WORDS[locale]
        page.goto("/accounts/login/")
        page.get_by_label(words["username"]).fill(user.get_username())
        page.get_by_label(words["password"]).fill("password")
        page.get_by_role("button", name=words["log_in"]).click()
        page.wait_for_load_state()
        return page

    yield open_page
    for context in contexts:
        context.close()


def _shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def _rows(page):
    return sorted(page.locator(".subscriber-table tbody tr").all_inner_texts())


def _save_vip_as_segment(page, words, name):
    page.goto("/subscribers/")
    page.get_by_role("search", name=words["filter"]).get_by_text(words["labels"], exact=True).first.click()
    page.get_by_role("checkbox", name="VIP").check()
    expect(page).to_have_url(re.compile(r"label=vip"))
    expect(page.get_by_text(words["count"])).to_be_visible()
    page.keyboard.press("Escape")
    filtered = _rows(page)
    page.get_by_role("button", name=words["save_as"]).click()
    dialog = page.get_by_role("dialog", name=words["dialog"])
    expect(dialog).to_be_visible()
    dialog.get_by_label(words["name"]).fill(name)
    dialog.get_by_label(words["description"]).fill("<b>not bold</b>")
    dialog.get_by_role("button", name=words["save"], exact=True).click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    expect(page.get_by_text("<b>not bold</b>")).to_be_visible()
    return filtered


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_save_a_filter_as_a_segment_and_open_it_from_the_side_menu(open_page, label_manager, people, locale):
    words = WORDS[locale]
    page = open_page(label_manager, locale)
    filtered = _save_vip_as_segment(page, words, "VIP <people>")
    assert _rows(page) == filtered
    page.goto("/labels/")
    page.get_by_role("navigation", name=words["menu"]).get_by_role("link", name="VIP <people>").click()
    expect(page.get_by_role("heading", name="VIP <people>", level=1)).to_be_visible()
    expect(page.get_by_text(words["count"])).to_be_visible()
    assert _rows(page) == filtered
    _shoot(page, f"segment-{locale}")
    # The Segments page counts it live.
    page.get_by_role("navigation", name=words["menu"]).get_by_role("link", name=words["all"]).click()
    expect(page.get_by_role("row").filter(has_text="VIP <people>")).to_contain_text(words["three"])
    _shoot(page, f"segments-{locale}")
    # And from the picker on the Subscribers page.
    page.goto("/subscribers/")
    page.get_by_text(words["segments"], exact=True).click()
    page.get_by_role("main").get_by_role("link", name="VIP <people>").click()
    expect(page.get_by_role("heading", name="VIP <people>", level=1)).to_be_visible()
    assert _rows(page) == filtered


def test_a_segment_opens_from_the_side_menu_on_a_phone(open_page, label_manager, people):
    words = WORDS["fr-FR"]
    page = open_page(label_manager, "fr-FR", width=390)
    filtered = _save_vip_as_segment(page, words, "VIP")
    page.goto("/labels/")
    page.get_by_role("button", name=words["open_menu"]).click()
    # Opened on a small screen, the menu is a dialog over the page.
    page.get_by_role("dialog", name=words["menu"]).get_by_role("link", name="VIP", exact=True).click()
    expect(page.get_by_role("heading", name="VIP", level=1)).to_be_visible()
    assert _rows(page) == filtered
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The Segments page too: its table scrolls inside its card, the page does not.
    page.goto("/segments/")
    expect(page.get_by_role("link", name="VIP", exact=True).first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
