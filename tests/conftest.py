import importlib
import os
import shutil
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from api import key_cache
from api.actions import create_api_key
from labels.models import Label
from subscribers.models import Channel, Subscriber

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file, not Django's default in-memory database.

    The live server (browser tests) would share an in-memory database's one connection between all its
    request threads, and SQLite connections are not for concurrent use: two pages loading at once (the side
    menu and a segment's count) sometimes read no session row and the user was sent to the login page.
    With a file each thread has its own connection, as each worker has in production.
    """
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings):
    # Production serves hashed files from collectstatic; tests read the sources.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _cache_without_database_queries(settings):
    """Query counts are about a page's own queries: the database cache's bookkeeping is left out.

    A per-process cache stands in for it, as one test process needs nothing more (tests/test_shared_cache.py
    checks the database cache itself, across processes). Redis, which CI's PostgreSQL run uses, adds no
    database query and stays.
    """
    if settings.CACHES["default"]["BACKEND"] == "hexasubs.cache.DatabaseCache":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(autouse=True)
def _nothing_cached_by_another_test(_cache_without_database_queries):
    """The cache outlives a test's rolled-back data: a cached label list or a user's permissions (the next
    test's user gets the same id) would leak into the next test."""
    cache.clear()


@pytest.fixture(autouse=True)
def _no_api_keys_remembered_from_another_test():
    """Each process keeps the API keys and channels it checked (api.key_cache): a test starts with none."""
    key_cache.forget()


@pytest.fixture(autouse=True)
def _import_files_in_a_temporary_folder(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request in French leaves French active in the thread (LocaleMiddleware does not switch back), and a
    later test would read French where it expects English: each test starts in the default language."""
    yield
    translation.deactivate()


standard_data = importlib.import_module("subscribers.migrations.0002_standard_channels_and_groups")
broadcast_groups = importlib.import_module("broadcasts.migrations.0002_broadcasters_group")
segment_groups = importlib.import_module("segments.migrations.0002_segment_groups")
label_group_permissions = importlib.import_module("labels.migrations.0006_label_group_permissions")


@pytest.fixture(autouse=True)
def _standard_channels_and_groups_in_committed_tests(request):
    """Tests that commit for real (browser, races) get an emptied database after each of them.

    Restore what the data migration made (channels, groups) before each, as a newly
    migrated database has them; Django recreates the permissions itself.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        standard_data.create_channels(apps, None)
        standard_data.fill_groups(apps)
        broadcast_groups.fill_groups(apps)
        segment_groups.fill_groups(apps)
        label_group_permissions.fill_groups(apps)


def _user(django_user_model, username, *groups):
    user = django_user_model.objects.create_user(username, password="password", first_name=username.title())
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def operator(django_user_model):
    return _user(django_user_model, "olivia", "Operators")


@pytest.fixture
def label_manager(django_user_model):
    return _user(django_user_model, "liam", "Operators", "Label managers")


@pytest.fixture
def nobody(django_user_model):
    """A signed-in user who belongs to no group."""
    return _user(django_user_model, "nina")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", password="password")


@pytest.fixture
def messenger(db):
    return Channel.objects.get(name="messenger")


@pytest.fixture
def messenger_channel(db):
    """The Messenger channel ready to send: a page token, and no rate limit."""
    channel = Channel.objects.get(name="messenger")
    channel.settings = {"page_access_token": "page-token", "messages_per_second": 0}
    channel.save()
    return channel


@pytest.fixture(autouse=True)
def _tests_keep_their_priority(settings):
    """Commands run in the test process (import_subscribers) would lower its priority for good: not here."""
    settings.WORKER_NICENESS = 0


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch):
    """Senders honour the proxy environment (broadcasts.connectors): tests reach their local servers directly."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def make_subscriber(messenger):
    counter = iter(range(1, 1_000_000))

    def make(**fields):
        number = next(counter)
        fields.setdefault("channel", messenger)
        fields.setdefault("foreign_id", f"psid-{number}")
        fields.setdefault("first_name", f"First{number}")
        fields.setdefault("last_name", f"Last{number}")
        fields.setdefault("locale", "en-US")
        return Subscriber.objects.create(**fields)

    return make


@pytest.fixture
def make_label(db):
    def make(title, **fields):
        return Label.objects.create(
            title=title, name=fields.pop("name", None) or Label.objects.free_name(title), **fields
        )

    return make


@pytest.fixture
def api_key(db):
    """An API key for every channel, with the full key the bot runtime sends in `api_key.full_key`."""
    cache.clear()  # rate-limit counters are keyed by the key's id, which the next test reuses
    key, key.full_key = create_api_key("Test bot")
    return key


@pytest.fixture
def api_client(api_key):
    return Client(headers={"Authorization": f"Bearer {api_key.full_key}"})


# Browser tests -------------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("HEXASUBS_REQUIRE_BROWSER"):
            pytest.fail(f"Browser tests are required but no Chromium was found at {CHROMIUM}.")
        pytest.skip(f"No Chromium at {CHROMIUM}: install Debian's chromium package to run browser tests.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def log_in(page):
    def log_in(user, password="password"):
        _log_in(page, user, password)

    return log_in


def _log_in(page, user, password="password"):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture
def operator_without_javascript(browser, live_server, operator):
    """A page with JavaScript switched off, signed in as the operator: the plain-HTML flows."""
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    _log_in(page, operator)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    def screenshot(name):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

    return screenshot
