"""Label groups in a browser, in English and in French (issue 14): a Label manager creates an exclusive group,
puts two labels in it, and an operator picks one plan for a subscriber with the Manage labels dialog's radios."""

import re

import pytest
from playwright.sync_api import expect

from labels.models import Label, LabelGroup

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


DELETE_WORDS = {
    "en-US": {
        "group": "Group",
        "delete": "Delete the group “Plan”",
        "dialog": "Delete a label group",
        "effect": "The 3 labels of “Plan” stay, in no group.",
        "confirm": "Delete",
        "deleted": "Label group “Plan” deleted; its 3 labels stay, in no group.",
    },
    "fr-FR": {
        "group": "Groupe",
        "delete": "Supprimer le groupe «\u00a0Plan\u00a0»",
        "dialog": "Supprimer un groupe d\u2019étiquettes",
        "effect": "Les 3 étiquettes de «\u00a0Plan\u00a0» restent, sans groupe.",
        "confirm": "Supprimer",
        "deleted": "Groupe d\u2019étiquettes «\u00a0Plan\u00a0» supprimé\u00a0; ses 3 étiquettes restent, sans groupe.",
    },
}


@pytest.mark.parametrize(("locale", "width"), [("en-US", 1280), ("fr-FR", 390)])
def test_a_group_is_deleted_from_the_labels_page_and_its_labels_stay(
    browser, live_server, label_manager, make_label, make_subscriber, locale, width
):
    words, deleting = WORDS[locale], DELETE_WORDS[locale]
    plan = LabelGroup.objects.create(title="Plan", name="plan", exclusive=True)
    for title in ("Free", "Pro", "Enterprise"):
        make_label(title, group=plan)
    context = browser.new_context(base_url=live_server.url, locale=locale, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto("/accounts/login/")
        page.get_by_label(words["username"]).fill(label_manager.get_username())
        page.get_by_label(words["password"]).fill("password")
        page.get_by_role("button", name=words["log_in"]).click()
        expect(page).not_to_have_url(re.compile("/accounts/login/"))
        page.goto("/labels/")
        # Picking the group in the select brings its bar (description, Edit and Delete) with the rows.
        page.get_by_label(deleting["group"], exact=True).select_option(label="Plan")

        page.get_by_role("button", name=deleting["delete"]).click()
        dialog = page.get_by_role("dialog", name=deleting["dialog"])
        expect(dialog.get_by_text(deleting["effect"])).to_be_visible()
        dialog.get_by_role("button", name=deleting["confirm"], exact=True).click()
        expect(page.get_by_role("status").filter(has_text=deleting["deleted"])).to_be_visible()
        expect(page.get_by_role("button", name=deleting["delete"])).to_have_count(0)
        for title in ("Free", "Pro", "Enterprise"):
            expect(page.get_by_role("row", name=re.compile(title))).to_be_visible()
        assert not LabelGroup.objects.exists()
        assert sorted(Label.objects.filter(group=None).values_list("title", flat=True)) == ["Enterprise", "Free", "Pro"]
    finally:
        context.close()
