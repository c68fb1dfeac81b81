"""Label groups in a browser, in English and in French (issue 14): a Label manager creates an exclusive group,
puts two labels in it, and an operator picks one plan for a subscriber with the Manage labels dialog's radios."""

import re

import pytest
from playwright.sync_api import expect

from labels.models import LabelGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en-US": {
        "username": "Username",
        "password": "Password",
        "log_in": "Log in",
        "add_group": "New group",
        "add_group_dialog": "Add a label group",
        "title": "Title",
        "exclusive": "Exclusive",
        "submit": "Submit",
        "save": "Save",
        "created": "Label group “Plan” created.",
        "edit": "Edit “{}”",
        "edit_dialog": "Edit a label",
        "group": "Group",
        "manage": "Manage labels of Ada Lovelace",
        "manage_dialog": "Manage labels",
        "none": "None",
        "subscribers": "Subscribers",
        "labels": "Labels",
    },
    "fr-FR": {
        "username": "Nom d\u2019utilisateur",
        "password": "Mot de passe",
        "log_in": "Se connecter",
        "add_group": "Nouveau groupe",
        "add_group_dialog": "Ajouter un groupe d\u2019étiquettes",
        "title": "Titre",
        "exclusive": "Exclusif",
        "submit": "Soumettre",
        "save": "Enregistrer",
        "created": "Groupe d\u2019étiquettes «\u00a0Plan\u00a0» créé.",
        "edit": "Modifier «\u00a0{}\u00a0»",
        "edit_dialog": "Modifier une étiquette",
        "group": "Groupe",
        "manage": "Gérer les étiquettes de Ada Lovelace",
        "manage_dialog": "Gérer les étiquettes",
        "none": "Aucune",
        "subscribers": "Abonnés",
        "labels": "Étiquettes",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_an_exclusive_group_is_made_then_one_plan_picked_with_radio_buttons(
    browser, live_server, label_manager, make_label, make_subscriber, locale
):
    words = WORDS[locale]
    ada = make_subscriber(first_name="Ada", last_name="Lovelace")
    make_label("Free")
    make_label("Pro")
    context = browser.new_context(base_url=live_server.url, locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto("/accounts/login/")
        page.get_by_label(words["username"]).fill(label_manager.get_username())
        page.get_by_label(words["password"]).fill("password")
        page.get_by_role("button", name=words["log_in"]).click()
        expect(page).not_to_have_url(re.compile("/accounts/login/"))
        page.goto("/labels/")

        page.get_by_role("button", name=words["add_group"]).click()
        dialog = page.get_by_role("dialog", name=words["add_group_dialog"])
        dialog.get_by_label(words["title"]).fill("Plan")
        dialog.get_by_label(words["exclusive"]).check()
        dialog.get_by_role("button", name=words["submit"]).click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("status").filter(has_text=words["created"])).to_be_visible()
        assert LabelGroup.objects.get(name="plan").exclusive

        for title in ("Free", "Pro"):
            page.get_by_role("button", name=words["edit"].format(title)).click()
            edit = page.get_by_role("dialog", name=words["edit_dialog"])
            edit.get_by_label(words["group"]).select_option(label="Plan")
            edit.get_by_role("button", name=words["save"]).click()
            expect(edit).to_be_hidden()
            expect(page.get_by_role("row", name=re.compile(title)).get_by_role("link", name="Plan")).to_be_visible()

        page.get_by_role("navigation").get_by_role("link", name=words["subscribers"]).first.click()
        row = page.get_by_role("row", name=re.compile("Ada Lovelace"))
        for plan in ("Pro", "Free"):
            row.get_by_role("button", name=words["manage"]).click()
            manage = page.get_by_role("dialog", name=words["manage_dialog"])
            plans = manage.get_by_role("group", name="Plan")
            expect(plans.get_by_role("radio")).to_have_count(3)
            plans.get_by_role("radio", name=plan).check()
            manage.get_by_role("button", name=words["submit"]).click()
            expect(manage).to_be_hidden()
            expect(row.get_by_text(plan, exact=True)).to_be_visible()
        assert list(ada.labels.values_list("title", flat=True)) == ["Free"]

        row.get_by_role("button", name=words["manage"]).click()
        manage = page.get_by_role("dialog", name=words["manage_dialog"])
        manage.get_by_role("group", name="Plan").get_by_role("radio", name=words["none"]).check()
        manage.get_by_role("button", name=words["submit"]).click()
        expect(manage).to_be_hidden()
        assert not ada.labels.exists()
    finally:
        context.close()
