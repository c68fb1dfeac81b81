"""French is a first-class language: complete catalogs in the guide's words and French typography, and not
one English word left on a page shown in French. `make translations` updates the catalogs; `make messages`
compiles them (`make run` and `make test` do)."""

import contextlib
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, get_resolver, reverse
from django.utils import translation

from subscribers.actions import add_labels
from subscribers.models import Subscriber

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale" / "fr" / "LC_MESSAGES"
CATALOGS = [LOCALE / "django.po", LOCALE / "djangojs.po"]
NBSP = "\u00a0"
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}

# The same options as `make translations`.
MAKEMESSAGES = [
    ["makemessages", "--locale", "fr", "--no-obsolete", "--ignore=tests", "--ignore=bench", "--ignore=staticfiles"],
    ["makemessages", "--domain", "djangojs", "--locale", "fr", "--no-obsolete", "--ignore=static/vendor"],
]
SOURCES_NOT_COPIED = shutil.ignore_patterns(
    ".*", "__pycache__", "staticfiles", "test-artifacts", "tests", "bench", "*.sqlite3*", "*.mo", "vendor"
)


def _entries(path):
    """(context, msgid, msgid_plural, [msgstr...], flags) for each entry of a .po file, the header left out."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        fields, flags, key = {}, "", None
        for line in block.splitlines():
            if line.startswith("#,"):
                flags += line
            elif match := re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d\])?) "(.*)"$', line):
                key = match.group(1)
                fields[key] = match.group(2)
            elif line.startswith('"'):
                fields[key] += line[1:-1]
        decoded = {key: re.sub(r"\\(.)", lambda m: ESCAPES[m.group(1)], value) for key, value in fields.items()}
        if decoded.get("msgid"):
            strs = [v for k, v in sorted(decoded.items()) if k.startswith("msgstr")]
            entries.append((decoded.get("msgctxt"), decoded["msgid"], decoded.get("msgid_plural"), strs, flags))
    return entries


def _french(msgid, context=None):
    return next(
        strs[0] for ctx, mid, _plural, strs, _flags in _entries(LOCALE / "django.po") if (ctx, mid) == (context, msgid)
    )


# The catalogs -----------------------------------------------------------------------------------------------


def test_makemessages_finds_nothing_new_to_translate(tmp_path):
    """Every string of ours, in the code as it is now, has its French translation in the catalogs."""
    copy = tmp_path / "hexasubs"
    shutil.copytree(ROOT, copy, ignore=SOURCES_NOT_COPIED)
    for command in MAKEMESSAGES:
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=copy,
            env={"PATH": "/usr/bin:/bin", "DEBUG": "1", "ENV_FILE": ""},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    untranslated = [
        f"{path.name}: {msgid!r}"
        for path in (copy / "locale" / "fr" / "LC_MESSAGES").glob("*.po")
        for _ctx, msgid, _plural, strs, flags in _entries(path)
        if not all(strs) or "fuzzy" in flags
    ]
    assert not untranslated, "Translate these (make translations, then edit locale/fr/LC_MESSAGES):\n" + "\n".join(
        untranslated
    )


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda path: path.name)
def test_the_catalog_is_complete_without_fuzzy_entries_and_compiles(catalog):
    entries = _entries(catalog)
    assert entries
    assert [msgid for _ctx, msgid, _plural, strs, flags in entries if not all(strs) or "fuzzy" in flags] == []
    assert "nplurals=2; plural=(n > 1);" in catalog.read_text(encoding="utf-8")
    result = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(catalog)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda path: path.name)
def test_the_compiled_catalog_is_up_to_date(catalog):
    compiled = catalog.with_suffix(".mo")
    assert compiled.exists() and compiled.stat().st_mtime >= catalog.stat().st_mtime, (
        f"{compiled.name} is missing or older than {catalog.name}: run `make messages`."
    )


def test_french_typography():
    """« » with non-breaking spaces inside, a non-breaking space before : ; ! ?, no English quotes."""
    problems = []
    for path in CATALOGS:
        for _ctx, _msgid, _plural, strs, _flags in _entries(path):
            for text in strs:
                prose = re.sub(r"<[^>]*>|%\(\w+\)[sd]|https?://\S+|`[^`]*`", "", text)
                if re.search(r"[ \w][:;!?»]", prose.replace("\u202f", NBSP)) and not re.search(r"\d:\d", prose):
                    problems.append(f"space before punctuation: {text!r}")
                if re.search(r"«[^\u00a0]", prose) or re.search(r"[“”\"]", prose):
                    problems.append(f"quotes: {text!r}")
                if "'" in prose:
                    problems.append(f"apostrophe: {text!r}")
    assert problems == []


def test_numbers_and_dates_are_written_the_french_way():
    from django.contrib.humanize.templatetags.humanize import intcomma
    from django.utils.formats import date_format

    with translation.override("fr"):
        assert intcomma(1234567) == f"1{NBSP}234{NBSP}567"
        from datetime import date

        assert date_format(date(2026, 11, 25), "SHORT_DATE_FORMAT") == "25/11/2026"


# The guide's words (../shared/seed/subscribers-guide.fr.txt) ---------------------------------------------------

GUIDE = {
    ("Manage subscribers", None): "Gérer les abonnés",
    ("Subscribers", None): "Abonnés",
    ("Name", "subscriber"): "Prénom et nom",
    ("Channel", None): "Canal",
    ("Gender", None): "Genre",
    ("Locale", None): "Paramètres régionaux",
    ("Labels", None): "Étiquettes",
    ("Created", "subscriber"): "Date de création",
    ("Updated", "subscriber"): "Mis à jour le",
    ("Manage labels", None): "Gérer les étiquettes",
    ("Submit", None): "Soumettre",
    ("Add", None): "Ajouter",
    ("Title", None): "Titre",
    ("Name", None): "Nom",
    ("Description", None): "Description",
    ("Facebook Messenger", None): "Facebook Messenger",
    ("Web site", None): "Site web",
    ("Live chat tester", None): "Testeur de chat en direct",
}


@pytest.mark.parametrize(("source", "french"), GUIDE.items(), ids=[key[0] for key in GUIDE])
def test_the_guides_words(source, french):
    msgid, context = source
    assert _french(msgid, context) == french


def test_a_number_meeting_a_noun_has_plural_forms():
    """No "%(count)s subscribers" outside ngettext or {% blocktranslate count %}; "about N" is always many."""
    singular_only = re.compile(r"%\(\w+\)[sd] (?:\w+ )?(subscriber|label|assignment|key|deliver|minute|time)")
    offenders = [
        msgid
        for path in CATALOGS
        for _ctx, msgid, plural, _strs, _flags in _entries(path)
        if plural is None and singular_only.search(msgid) and not re.search(r"about %\(\w+\)s", msgid, re.IGNORECASE)
    ]
    assert offenders == []


# Every page in French ---------------------------------------------------------------------------------------

# Words that are English and not French: found on a page shown in French, they are a string left untranslated.
ENGLISH = re.compile(
    r"\b(the|and|of|to|with|from|your|you|this|that|is|are|was|has|have|not|yet|here|there|which|who|what|"
    r"add|edit|delete|remove|save|cancel|close|search|filters?|apply|clear|select|selected|show|rows|next|"
    r"previous|labels?|subscribers?|channels?|gender|locale|name|title|created|updated|log|logged|password|"
    r"changes?|settings|manage|bulk|history|when|by|none|any|all|yes|no|back|home|view|keys?|deliveries|"
    r"endpoints?|colou?r|grey|gray|submit|done|running|waiting|failed|pending)\b",
    re.IGNORECASE,
)


OUR_APPS = {"auth", "labels", "subscribers", "api", "webhooks"}


class _VisibleText(HTMLParser):
    """What a person reads or hears on a page: text, and the labels, titles and placeholders of controls."""

    SKIPPED = {"script", "style", "code", "pre"}
    SPOKEN = ("aria-label", "title", "placeholder", "alt")

    def __init__(self):
        super().__init__()
        self.texts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        attributes = dict(attrs)
        self.texts += [attributes[name] for name in self.SPOKEN if attributes.get(name)]
        if tag == "input" and attributes.get("type") in {"submit", "button"} and attributes.get("value"):
            self.texts.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


# Not ours to translate: the groups' names (data, named in the 403 message), permission names (Django stores
# them in English) and the alt text Django's admin search box does not mark for translation.
NOT_OURS = re.compile(r"Label managers|Operators|^.* \| Can .*$|^Search$")


def _english_left(html):
    parser = _VisibleText()
    parser.feed(html)
    return [text for text in parser.texts if ENGLISH.search(NOT_OURS.sub("", text))]


@pytest.fixture
def french_data(make_label, make_subscriber, admin_user, django_user_model):
    """Data in French, so that any English on a page comes from the console itself."""
    fideles = make_label("Clients fidèles", color="green", description="Plus de cinq commandes.")
    make_label("Intéressé par les produits", color="blue")
    ada = make_subscriber(first_name="Adèle", last_name="Martin", gender="female", timezone="-5", country="FR")
    add_labels(Subscriber.objects.filter(pk=ada.pk), [fideles], by=admin_user)
    return {"label": fideles, "subscriber": ada}


CONSOLE_APPS = ["subscribers", "labels", "broadcasts"]


def _url_names(namespace):
    """(name, number of arguments) of each URL of `namespace`."""
    resolver = get_resolver()
    _prefix, inner = resolver.namespace_dict[namespace]
    for pattern in inner.url_patterns:
        if getattr(pattern, "name", None):
            yield pattern.name, len(pattern.pattern.converters)


def _pages(data):
    """Every page of the console and of the administration, with what makes it show its content."""
    label, ada = data["label"], data["subscriber"]
    pages = [
        reverse("subscribers:list"),
        reverse("subscribers:list") + "?q=personne",
        reverse("subscribers:list") + "?locale=zz_ZZ&page=x",
        reverse("subscribers:detail", args=[ada.pk]),
        reverse("subscribers:labels", args=[ada.pk]),
        reverse("subscribers:bulk_labels") + f"?kind=add&ids={ada.pk}&filters=",
        reverse("subscribers:bulk_labels") + "?kind=remove&all_matching=1&filters=q%3DMartin",
        reverse("subscribers:bulk_labels") + "?kind=add",
        reverse("labels:list"),
        reverse("labels:add"),
        reverse("labels:edit", args=[label.pk]),
        reverse("labels:delete", args=[label.pk]),
        reverse("password_change"),
        reverse("password_change_done"),
        reverse("api:openapi-view"),
        "/page-qui-n-existe-pas/",
        reverse("admin:index"),
    ]
    # And every other page of the console's apps, present and future: without arguments, or with one (the id of
    # the subscriber or the label above; an id of something else answers the 404 page, in French too).
    for namespace in CONSOLE_APPS:
        with contextlib.suppress(NoReverseMatch):
            for name, arguments in _url_names(namespace):
                pk = label.pk if namespace == "labels" else ada.pk
                with contextlib.suppress(NoReverseMatch):
                    pages.append(reverse(f"{namespace}:{name}", args=[pk] * arguments))
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label not in OUR_APPS:
            continue
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        pages.append(reverse("admin:app_list", args=[opts.app_label]))
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))  # 403 where nobody may add
    pages.append(reverse("admin:subscribers_subscriber_change", args=[ada.pk]))
    pages.append(reverse("admin:labels_label_change", args=[label.pk]))
    return list(dict.fromkeys(pages))


def test_every_page_in_french_has_no_english_left(client, admin_user, french_data):
    client.force_login(admin_user)
    leftovers = {}
    for url in _pages(french_data):
        response = client.get(url, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        if response.status_code == 405 or not response["Content-Type"].startswith("text/html"):
            continue  # a form's target, a download
        assert response.status_code in {200, 403, 404, 422}, (url, response.status_code)
        assert "<html" not in response.text or 'lang="fr"' in response.text, url
        if english := _english_left(response.text):
            leftovers[url] = english
    assert leftovers == {}, "\n".join(f"{url}: {texts}" for url, texts in leftovers.items())


def test_the_dialogs_and_the_logged_out_pages_in_french(client, admin_user, nobody, french_data):
    french = {"Accept-Language": "fr"}
    pages = [client.get(reverse("login"), headers=french)]
    client.force_login(nobody)
    pages.append(client.get(reverse("subscribers:list"), headers=french))  # 403
    client.force_login(admin_user)
    ada = french_data["subscriber"]
    htmx = {**french, "HX-Request": "true"}
    pages += [
        client.get(reverse("subscribers:labels", args=[ada.pk]), headers=htmx),
        client.get(reverse("labels:add"), headers=htmx),
        client.post(reverse("labels:add"), {"title": "CLIENTS fidèles"}, headers=htmx),
        client.post(
            reverse("subscribers:bulk_labels"),
            {"kind": "add", "ids": [ada.pk], "labels": [french_data["label"].pk], "filters": ""},
            headers=htmx,
        ),
    ]
    assert {page.status_code for page in pages} <= {200, 403, 422}
    assert [_english_left(page.text) for page in pages] == [[]] * len(pages)
    assert "Rien à modifier" in pages[-1].text  # Adèle has the label already


def test_the_javascript_strings_come_in_french(client, admin_user):
    client.force_login(admin_user)
    catalog = client.get(reverse("javascript-catalog"), headers={"Accept-Language": "fr"}).text
    assert "abonn\\u00e9s s\\u00e9lectionn\\u00e9s" in catalog or "abonnés sélectionnés" in catalog


def test_the_language_is_switched_from_the_user_menu_and_remembered(client, operator):
    client.force_login(operator)
    page = client.get(reverse("subscribers:list"), headers={"Accept-Language": "en"})
    assert 'name="language" value="fr"' in page.text and "Français" in page.text
    response = client.post(reverse("set_language"), {"language": "fr", "next": reverse("labels:list")})
    assert response["Location"] == reverse("labels:list")
    # Remembered in a cookie, whatever the browser asks for.
    assert (
        '<h1 tabindex="-1">Étiquettes</h1>'
        in client.get(reverse("labels:list"), headers={"Accept-Language": "en"}).text
    )
