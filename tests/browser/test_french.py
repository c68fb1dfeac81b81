"""The guide's flows in a French browser (fr-FR), every control found by its French name, and the layout at
the widths operators use: laptops (1280, 1366, 1440 px) and a phone (390 px), in French and in English."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from subscribers.actions import add_labels
from subscribers.models import Subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBSP = "\u00a0"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NO_SIDEWAYS_SCROLLING = "document.documentElement.scrollWidth <= window.innerWidth"
TABLE_FITS = "(() => { const box = document.querySelector('.subscriber-results .table-responsive');"
TABLE_FITS += " return box.scrollWidth <= box.clientWidth; })()"


@pytest.fixture
def people(make_subscriber, make_label):
    """Ada Lovelace, an active user, among a few others; labels with the guide's examples as titles."""
    actifs = make_label("Utilisateurs actifs", color="green")
    make_label("Intéressé par les produits", color="blue")
    make_label("Besoin d'assistance client", color="red")
    ada = make_subscriber(first_name="Ada", last_name="Lovelace", gender="female", locale="fr-FR")
    others = [make_subscriber(locale="fr-FR") for _ in range(4)]
    add_labels(Subscriber.objects.filter(pk__in=[ada.pk, others[0].pk]), [actifs])
    return ada


def _browser_page(browser, live_server, locale, width):
    context = browser.new_context(
        base_url=live_server.url, locale=locale, viewport={"width": width, "height": 900 if width > 500 else 844}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def open_page(browser, live_server):
    """A signed-in page in a language and at a width; closed after the test."""
    pages = []

    def open_page(user, locale="fr-FR", width=1280):
        page = _browser_page(browser, live_server, locale, width)
        pages.append(page)
        page.goto("/accounts/login/")
        french = locale.startswith("fr")
        page.get_by_label("Nom d\u2019utilisateur" if french else "Username").fill(user.get_username())
        page.get_by_label("Mot de passe" if french else "Password").fill("password")
        page.get_by_role("button", name="Se connecter" if french else "Log in").click()
        page.wait_for_load_state()
        return page

    yield open_page
    for page in pages:
        page.context.close()


def _shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_the_guide_manage_labels_then_submit(open_page, operator, people):
    page = open_page(operator)
    menu = page.get_by_role("navigation", name="Menu latéral")
    expect(menu.get_by_text("Gérer les abonnés")).to_be_visible()
    expect(menu.get_by_role("link", name="Abonnés")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Abonnés")).to_be_visible()
    for header in ["Prénom et nom", "Canal", "Genre", "Paramètres régionaux", "Étiquettes", "Date de création"]:
        expect(page.get_by_role("columnheader", name=re.compile(f"^{header}"))).to_be_visible()
    expect(page.get_by_role("columnheader", name="Mis à jour le")).to_be_visible()
    expect(page.get_by_text("1\u20135 sur 5 abonnés")).to_be_visible()

    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Ada Lovelace"))
    button = row.get_by_role("button", name="Gérer les étiquettes de Ada Lovelace")
    expect(button).to_have_text("Gérer les étiquettes")
    button.click()
    dialog = page.get_by_role("dialog", name="Gérer les étiquettes")
    expect(dialog.get_by_role("searchbox", name="Trouver une étiquette")).to_be_focused()
    dialog.get_by_role("checkbox", name="Intéressé par les produits").check()
    page.wait_for_timeout(300)
    _shoot(page, "fr-manage-labels-1280")
    dialog.get_by_role("button", name="Soumettre").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="Étiquettes mises à jour pour Ada Lovelace")).to_be_visible()
    expect(row.get_by_text("Intéressé par les produits")).to_be_visible()
    expect(button).to_be_focused()
    _shoot(page, "fr-subscribers-1280")


def test_the_guide_labels_add_title_name_generated_then_submit(open_page, label_manager, people):
    page = open_page(label_manager)
    page.get_by_role("navigation", name="Menu latéral").get_by_role("link", name="Étiquettes").click()
    page.get_by_role("button", name="Ajouter").click()
    dialog = page.get_by_role("dialog", name="Ajouter une étiquette")
    dialog.get_by_label("Titre").press_sequentially("Clients fidèles", delay=20)
    expect(dialog.get_by_label("Nom")).to_have_value("clients_fideles")
    dialog.get_by_label("Description").fill("Plus de cinq commandes.")
    dialog.get_by_text("Vert", exact=True).click()
    page.wait_for_timeout(300)
    _shoot(page, "fr-label-add-1280")
    dialog.get_by_role("button", name="Soumettre").click()

    expect(dialog).to_be_hidden()
    created = f"Étiquette «{NBSP}Clients fidèles{NBSP}» créée."
    expect(page.get_by_role("status").filter(has_text=created)).to_be_visible()
    expect(page.get_by_role("link", name="Abonnés ayant l\u2019étiquette Clients fidèles")).to_have_text("0")

    # A title already taken is refused in French, in the dialog.
    page.get_by_role("button", name="Ajouter").click()
    dialog.get_by_label("Titre").fill("CLIENTS fidèles")
    dialog.get_by_role("button", name="Soumettre").click()
    expect(dialog.get_by_text("Une étiquette avec ce titre existe déjà.")).to_be_visible()
    expect(dialog.get_by_label("Titre")).to_be_focused()


def test_a_bulk_change_with_nothing_to_change_says_so(open_page, operator, people):
    page = open_page(operator)
    page.get_by_role("checkbox", name="Sélectionner Ada Lovelace").check()
    bar = page.get_by_role("region", name="Abonnés sélectionnés")
    expect(bar.get_by_text("1 abonné sélectionné")).to_be_visible()
    bar.get_by_role("button", name="Ajouter des étiquettes…").click()
    dialog = page.get_by_role("dialog", name="Ajouter des étiquettes")
    dialog.get_by_role("checkbox", name="Utilisateurs actifs").check()
    dialog.get_by_role("button", name="Continuer").click()
    expect(dialog.get_by_text("Rien à modifier")).to_be_visible()
    expect(dialog.get_by_role("button", name="Fermer").last).to_be_focused()
    expect(dialog.get_by_role("button", name="Ajouter des étiquettes")).to_have_count(0)
    _shoot(page, "fr-bulk-nothing-to-change")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()


def test_the_language_is_chosen_in_the_user_menu_and_remembered(open_page, operator, people):
    page = open_page(operator)
    page.get_by_role("button", name="Olivia").click()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Subscribers")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Subscribers")).to_be_visible()
    page.get_by_role("button", name="Olivia").click()
    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", name="Abonnés")).to_be_visible()


@pytest.mark.parametrize("locale", ["fr-FR", "en-US"])
@pytest.mark.parametrize("width", [1280, 1366, 1440])
def test_at_laptop_widths_the_row_button_shows_its_words_and_the_table_fits(open_page, operator, people, locale, width):
    page = open_page(operator, locale, width)
    words = "Gérer les étiquettes" if locale == "fr-FR" else "Manage labels"
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Ada Lovelace"))
    expect(row.get_by_role("button").get_by_text(words, exact=True)).to_be_visible()
    assert page.evaluate(TABLE_FITS), "the table needs sideways scrolling"
    assert page.evaluate(NO_SIDEWAYS_SCROLLING)
    # The filter bar's Apply and Clear share the line of the filters, never a line of their own.
    apply = page.get_by_role("button", name="Appliquer" if locale == "fr-FR" else "Apply").bounding_box()
    dates = page.get_by_text("Dates", exact=True).bounding_box()
    assert abs(apply["y"] - dates["y"]) < 10
    if width == 1280:
        _shoot(page, f"subscribers-{locale[:2]}-{width}")


@pytest.mark.parametrize("locale", ["fr-FR", "en-US"])
def test_on_a_phone_each_row_is_a_card_with_its_button_in_reach(open_page, operator, people, locale):
    page = open_page(operator, locale, 390)
    words = "Gérer les étiquettes" if locale == "fr-FR" else "Manage labels"
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Ada Lovelace"))
    button = row.get_by_role("button").get_by_text(words, exact=True)
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate(NO_SIDEWAYS_SCROLLING)
    expect(row.get_by_text("Utilisateurs actifs")).to_be_visible()
    _shoot(page, f"subscribers-{locale[:2]}-390")
    row.get_by_role("button").click()
    expect(page.get_by_role("dialog", name=words)).to_be_visible()
    page.wait_for_timeout(300)
    _shoot(page, f"manage-labels-{locale[:2]}-390")
