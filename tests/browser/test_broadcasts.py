"""A Broadcaster's flow: audience from a label, a message with a token, preview, test send, send, progress, report."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from broadcasts import actions
from broadcasts.models import Broadcast, ConsoleMessage
from subscribers.actions import add_labels
from subscribers.models import Channel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broadcaster(django_user_model):
    user = django_user_model.objects.create_user("bea", password="password", first_name="Bea")
    user.groups.add(*Group.objects.filter(name__in=["Broadcasters", "Operators"]))
    return user


@pytest.fixture
def audience(make_subscriber, make_label):
    """Four VIP subscribers of the Live chat tester (Ada in French), and one who is not VIP."""
    console = Channel.objects.get(name="console")
    vip = make_label("VIP", color="purple")
    make_label("Newsletter", color="indigo")
    seen = timezone.now() - timedelta(hours=1)
    people = [
        make_subscriber(channel=console, first_name="Ada", last_name="Lovelace", locale="fr-FR", last_seen_at=seen),
        *[make_subscriber(channel=console, last_seen_at=seen) for _ in range(3)],
    ]
    add_labels(people, [vip])
    make_subscriber(channel=console, first_name="Other", last_seen_at=seen)
    return people


def _flow(page, log_in, broadcaster, audience, screenshot, suffix):
    log_in(broadcaster)
    page.goto("/subscribers/?label=vip")
    page.get_by_role("link", name="Broadcast to these 4…").click()
    expect(page.get_by_role("heading", name="New broadcast")).to_be_visible()
    expect(page.get_by_text("Will be sent to 4 subscribers")).to_be_visible()
    # The count follows the audience as it changes.
    page.get_by_role("checkbox", name="VIP").uncheck()
    expect(page.get_by_text("Will be sent to 5 subscribers")).to_be_visible()
    page.get_by_role("checkbox", name="VIP").check()
    expect(page.get_by_text("Will be sent to 4 subscribers")).to_be_visible()

    page.get_by_label("Title").fill("Spring sale")
    page.get_by_role("textbox", name="Message", exact=True).fill("Hello {first_nam}!")
    page.get_by_role("button", name="Save the draft").click()
    expect(page.get_by_text("“{first_nam}” is not a token")).to_be_visible()
    page.get_by_role("textbox", name="Message", exact=True).fill("Hello {first_name|there}, 20% off today!")
    page.get_by_label("Quick replies").fill("Show me | SHOW_SALE")
    page.get_by_label("Locale").first.fill("fr")
    page.get_by_label("Message in this locale").first.fill("Bonjour {first_name|toi}, -20 % aujourd'hui !")
    screenshot(f"broadcast-compose{suffix}")
    page.get_by_role("button", name="Save the draft").click()

    expect(page.get_by_role("heading", name="Spring sale")).to_be_visible()
    expect(page.get_by_test_id("preview")).to_have_text("Bonjour Ada, -20 % aujourd'hui !")
    screenshot(f"broadcast-draft{suffix}")

    page.get_by_label("Send a test to").fill(audience[1].foreign_id)
    page.get_by_role("button", name="Send a test").click()
    expect(page.get_by_text(f"Test sent to {audience[1]}.")).to_be_visible()
    assert ConsoleMessage.objects.get().is_test

    page.get_by_role("button", name="Send the broadcast").click()
    expect(page.get_by_role("status").filter(has_text="Preparing the audience")).to_be_visible()
    broadcast = Broadcast.objects.get()
    actions.run_broadcast_now(broadcast.pk)  # what a db_worker does
    # The page polls its progress and turns into the report when it is done.
    expect(page.get_by_text("4 of 4 recipients handled")).to_be_visible(timeout=15_000)
    expect(page.get_by_role("heading", name="Report")).to_be_visible()
    expect(page.get_by_role("cell", name="Ada Lovelace")).to_be_visible()
    screenshot(f"broadcast-report{suffix}")

    page.get_by_label("Status", exact=True).select_option("sent")
    expect(page.get_by_role("cell", name="Ada Lovelace")).to_be_visible()
    page.get_by_role("link", name="Broadcasts", exact=True).first.click()
    expect(page.get_by_role("link", name="Spring sale")).to_be_visible()
    assert ConsoleMessage.objects.filter(is_test=False).count() == 4


def test_a_broadcaster_sends_a_label_targeted_broadcast_and_reads_its_report(
    page, log_in, broadcaster, audience, screenshot
):
    _flow(page, log_in, broadcaster, audience, screenshot, "")
    page.goto("/broadcasts/live-chat/")
    expect(page.get_by_text("Hello Other", exact=False)).to_have_count(0)
    expect(page.get_by_text("Bonjour Ada, -20 % aujourd'hui !")).to_be_visible()


def test_the_same_on_a_phone(browser, live_server, broadcaster, audience, screenshot):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.set_default_timeout(10_000)
    try:
        from tests.conftest import _log_in

        def log_in(user):
            _log_in(phone, user)

        def shot(name):
            from tests.conftest import ARTIFACTS

            ARTIFACTS.mkdir(exist_ok=True)
            phone.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

        _flow(phone, log_in, broadcaster, audience, shot, "-phone")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width} px"
    finally:
        context.close()


def test_an_operator_sees_broadcasts_but_cannot_send(page, log_in, operator, audience):
    Broadcast.objects.create(title="Draft sale", text="Hi", audience={"filters": {"label": ["vip"]}})
    log_in(operator)
    page.get_by_role("navigation", name="Side menu").get_by_role("link", name="Broadcasts").click()
    page.get_by_role("link", name="Draft sale").click()
    expect(page.get_by_role("heading", name="Draft sale")).to_be_visible()
    expect(page.get_by_role("button", name="Send the broadcast")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/broadcasts/\d+/$"))


def test_the_pages_in_french_at_1280_and_390(browser, live_server, broadcaster, audience):
    from tests.conftest import ARTIFACTS, _log_in

    draft = Broadcast.objects.create(
        title="Soldes de printemps", text="Bonjour {first_name|toi} !", audience={"filters": {"label": ["vip"]}}
    )
    done = Broadcast.objects.create(title="Soldes d\u2019hiver", text="Bonjour", audience={"filters": {}})
    actions.start_broadcast(done, by=broadcaster)
    actions.run_broadcast_now(done.pk, sleep=lambda seconds: None)
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            _log_in(page, broadcaster)
            context.add_cookies([{"name": "django_language", "value": "fr", "url": live_server.url}])
            for name, url in [
                ("list", "/broadcasts/"),
                ("compose", "/broadcasts/new/?label=vip"),
                ("draft", draft.get_absolute_url()),
                ("report", done.get_absolute_url()),
            ]:
                page.goto(url)
                expect(page.locator("html")).to_have_attribute("lang", "fr")
                page.screenshot(path=ARTIFACTS / f"broadcast-fr-{name}-{width}.png", full_page=True)
                assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        finally:
            context.close()


def test_refused_input_comes_back_as_typed_in_french(page, log_in, live_server, broadcaster, audience, screenshot):
    draft = Broadcast.objects.create(
        title="Soldes de printemps", text="Bonjour {first_name|toi} !", audience={"filters": {"label": ["vip"]}}
    )
    log_in(broadcaster)
    page.context.add_cookies([{"name": "django_language", "value": "fr", "url": live_server.url}])
    page.goto(draft.get_absolute_url())

    recipients = page.get_by_label("Envoyer un test à")
    recipients.fill("nope-123, <b>x</b>")
    page.get_by_role("button", name="Envoyer un test", exact=True).click()
    expect(page.get_by_text("Aucun abonné n\u2019a les identifiants externes <b>x</b>, nope-123.")).to_be_visible()
    expect(recipients).to_have_value("nope-123, <b>x</b>")
    expect(recipients).to_be_focused()
    screenshot("broadcast-fr-bad-test-send")

    page.get_by_role("radio", name="À une date et une heure").check()
    page.get_by_label("Date", exact=True).fill("2020-01-01")
    page.get_by_label("Heure", exact=True).fill("10:00")
    page.get_by_role("button", name="Envoyer la diffusion").click()
    expect(page.get_by_text("Ce moment est passé : choisissez-en un plus tard, ou envoyez maintenant.")).to_be_visible()
    expect(page.get_by_role("radio", name="À une date et une heure")).to_be_checked()
    expect(page.get_by_label("Date", exact=True)).to_have_value("2020-01-01")
    expect(page.get_by_label("Heure", exact=True)).to_have_value("10:00")
    expect(page.get_by_label("Date", exact=True)).to_be_focused()
    screenshot("broadcast-fr-past-schedule")
    assert not ConsoleMessage.objects.exists()
    assert Broadcast.objects.get().status == "draft"
