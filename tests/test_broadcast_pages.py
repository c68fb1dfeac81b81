"""The Broadcasts pages: compose with live counts, validation, preview, test send, send, report, CSV, labels."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone, translation

from broadcasts import actions
from broadcasts.models import Broadcast, ConsoleMessage, Delivery
from labels.models import LabelGroup
from subscribers.actions import add_labels, set_opt_out
from subscribers.models import Channel, LabelOperation, Subscriber, SubscriberLabel

pytestmark = pytest.mark.django_db


@pytest.fixture
def broadcaster(django_user_model):
    user = django_user_model.objects.create_user("bea", password="password", first_name="Bea")
    user.groups.add(*Group.objects.filter(name__in=["Broadcasters", "Operators"]))
    return user


@pytest.fixture
def console(db):
    return Channel.objects.get(name="console")


@pytest.fixture
def vip(make_label):
    return make_label("VIP")


@pytest.fixture
def people(make_subscriber, console, vip):
    seen = timezone.now() - timedelta(hours=1)
    made = [make_subscriber(channel=console, last_seen_at=seen) for _ in range(4)]
    add_labels(made[:3], [vip])
    return made


def _draft(**fields):
    fields.setdefault("title", "Spring sale")
    fields.setdefault("text", "Hello {first_name|there}!")
    fields.setdefault("audience", {"filters": {"label": ["vip"]}})
    return Broadcast.objects.create(**fields)


def _compose_data(**overrides):
    data = {
        "title": "Spring sale",
        "text": "Hi {first_name|there}, 20% off today.",
        "message_tag": "",
        "quick_replies_text": "Show me | SHOW_SALE\nNo thanks | NO",
        "last_interaction_hours": "",
        "label": ["vip"],
        "label_mode": "any",
        "variant-TOTAL_FORMS": "2",
        "variant-INITIAL_FORMS": "0",
        "variant-0-locale": "fr",
        "variant-0-text": "Bonjour {first_name|toi}, -20 % aujourd\u2019hui.",
        "variant-1-locale": "",
        "variant-1-text": "",
    }
    data.update(overrides)
    return data


def test_the_pages_require_the_permissions(client, nobody, operator, people):
    broadcast = _draft()
    client.force_login(nobody)
    assert client.get(reverse("broadcasts:list")).status_code == 403
    client.force_login(operator)
    assert client.get(reverse("broadcasts:list")).status_code == 200
    assert client.get(broadcast.get_absolute_url()).status_code == 200
    assert client.get(reverse("broadcasts:add")).status_code == 403
    assert client.post(reverse("broadcasts:send", args=[broadcast.pk]), {"when": "now"}).status_code == 403
    assert Broadcast.objects.get().status == "draft"


def test_the_subscribers_page_offers_to_broadcast_to_its_filter(client, broadcaster, people):
    client.force_login(broadcaster)
    page = client.get(reverse("subscribers:list") + "?label=vip&channel=console").text
    assert "Broadcast to these 3…" in page
    assert reverse("broadcasts:add") + "?label=vip&amp;channel=console" in page


def test_a_filter_that_matches_nobody_offers_no_broadcast(client, broadcaster, people):
    client.force_login(broadcaster)
    page = client.get(reverse("subscribers:list") + "?q=zzzz", HTTP_ACCEPT_LANGUAGE="fr").text
    assert "Personne à qui diffuser" in page and 'aria-disabled="true"' in page
    assert reverse("broadcasts:add") + "?q=zzzz" not in page


def test_compose_starts_from_the_subscribers_filter_with_live_counts(client, broadcaster, people):
    set_opt_out(people[0], True)
    client.force_login(broadcaster)
    page = client.get(reverse("broadcasts:add") + "?label=vip").text
    assert "Will be sent to 2 subscribers" in page
    assert "1 skipped: Opted out of promotional messages" in page

    counts = client.get(reverse("broadcasts:audience") + "?channel=console", headers={"HX-Request": "true"})
    assert "Will be sent to 3 subscribers" in counts.text
    assert "<html" not in counts.text


def test_a_draft_is_saved_with_its_variants_and_quick_replies(client, broadcaster, people):
    client.force_login(broadcaster)
    response = client.post(reverse("broadcasts:add"), _compose_data())
    broadcast = Broadcast.objects.get()
    assert response.url == broadcast.get_absolute_url()
    assert broadcast.audience == {"filters": {"label": ["vip"], "label_mode": ["any"]}}
    assert broadcast.variants == {"fr": "Bonjour {first_name|toi}, -20 % aujourd\u2019hui."}
    assert broadcast.quick_replies == [
        {"title": "Show me", "payload": "SHOW_SALE"},
        {"title": "No thanks", "payload": "NO"},
    ]
    assert broadcast.created_by == broadcaster


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Hi {first_nme}", "“{first_nme}” is not a token"),
        ("Hi {first_name", "stands alone"),
        ("Hi {{ first_name }}", None),  # braces written twice are text
        ("Hi {first_name|" + "x" * 101 + "}", "longer than 100 characters"),
        ("Hi {% if 1 %}", "is not a token"),
    ],
)
def test_an_unknown_or_malformed_token_is_a_form_error(client, broadcaster, people, text, problem):
    client.force_login(broadcaster)
    response = client.post(reverse("broadcasts:add"), _compose_data(text=text))
    if problem is None:
        assert response.status_code == 302
    else:
        assert response.status_code == 422
        assert problem in response.content.decode()
        assert not Broadcast.objects.exists()


def test_a_variant_needs_a_real_locale_and_a_text(client, broadcaster, people):
    client.force_login(broadcaster)
    response = client.post(
        reverse("broadcasts:add"), _compose_data(**{"variant-1-locale": "not a locale!", "variant-1-text": "x"})
    )
    assert response.status_code == 422
    response = client.post(reverse("broadcasts:add"), _compose_data(**{"variant-1-locale": "de", "variant-1-text": ""}))
    assert "Write the message for this locale" in response.content.decode()


def test_a_bad_audience_filter_is_a_form_error(client, broadcaster, people):
    client.force_login(broadcaster)
    response = client.post(reverse("broadcasts:add"), _compose_data(label=["nope"]))
    assert response.status_code == 422
    assert "There is no label named “nope”" in response.content.decode()


def test_only_drafts_are_edited(client, broadcaster, people):
    broadcast = _draft(status="done")
    client.force_login(broadcaster)
    response = client.get(reverse("broadcasts:edit", args=[broadcast.pk]))
    assert response.url == broadcast.get_absolute_url()


def test_the_preview_shows_a_real_subscriber_in_their_locale(client, broadcaster, people):
    people[1].locale = "fr-FR"
    people[1].save()
    broadcast = _draft(variants={"fr": "Bonjour {first_name|toi}"})
    client.force_login(broadcaster)
    page = client.get(broadcast.get_absolute_url() + f"?preview={people[1].pk}").text
    assert f"Bonjour {people[1].first_name}" in page
    page = client.get(broadcast.get_absolute_url()).text
    assert f"Hello {people[0].first_name}!" in page


def test_hostile_names_and_texts_are_shown_as_text(client, broadcaster, make_subscriber, console, vip):
    evil = make_subscriber(
        channel=console,
        first_name="<script>alert(1)</script>",
        last_name='=HYPERLINK("x")',
        last_seen_at=timezone.now(),
    )
    add_labels([evil], [vip])
    broadcast = _draft(title="<b>Sale</b>", text="<img src=x onerror=alert(2)> {full_name}")
    client.force_login(broadcaster)
    page = client.get(broadcast.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<b>Sale</b>" not in page

    actions.start_broadcast(broadcast, by=broadcaster)
    actions.run_broadcast_now(broadcast.pk, sleep=lambda s: None)
    report = client.get(broadcast.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in report
    console_page = client.get(reverse("broadcasts:console")).content.decode()
    assert "<img src=x" not in console_page and "&lt;img src=x" in console_page

    exported = b"".join(client.get(reverse("broadcasts:export", args=[broadcast.pk])).streaming_content).decode()
    rows = list(csv.reader(io.StringIO(exported.lstrip("\ufeff"))))
    assert rows[1][4] == '\'=HYPERLINK("x")'


def test_a_test_send_reaches_the_named_subscribers_only(client, broadcaster, people):
    broadcast = _draft()
    client.force_login(broadcaster)
    client.post(reverse("broadcasts:test", args=[broadcast.pk]), {"recipients": people[3].foreign_id})
    message = ConsoleMessage.objects.get()
    assert (message.subscriber, message.is_test) == (people[3], True)
    assert Broadcast.objects.get().status == "draft"
    assert not Delivery.objects.exists()

    response = client.post(reverse("broadcasts:test", args=[broadcast.pk]), {"recipients": "nobody-here"}, follow=True)
    assert "No subscriber has the foreign id nobody-here." in response.content.decode()


def test_a_bad_test_send_comes_back_with_the_recipients_as_typed(client, broadcaster, people):
    broadcast = _draft()
    client.force_login(broadcaster)
    response = client.post(reverse("broadcasts:test", args=[broadcast.pk]), {"recipients": "nope-123, <b>x</b>"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "No subscribers have the foreign ids &lt;b&gt;x&lt;/b&gt;, nope-123." in page
    assert 'value="nope-123, &lt;b&gt;x&lt;/b&gt;"' in page and "<b>x</b>" not in page
    assert 'aria-invalid="true" aria-describedby="id_recipients_helptext id_recipients_error"' in page
    assert 'id="id_recipients_error"' in page and 'id="id_recipients_helptext"' in page
    assert 'name="date" class="form-control" id="id_date"' in page  # the other form stays as it was
    assert not ConsoleMessage.objects.exists()
    assert Broadcast.objects.get().status == "draft"


def test_a_past_schedule_comes_back_with_the_date_and_time_as_typed(client, broadcaster, people):
    broadcast = _draft()
    client.force_login(broadcaster)
    data = {"when": "later", "date": "2020-01-01", "time": "10:00", "time_zone": "America/Sao_Paulo"}
    with translation.override("en"):
        response = client.post(reverse("broadcasts:send", args=[broadcast.pk]), data, headers={"Accept-Language": "fr"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "Ce moment est passé" in page
    assert 'value="later" class="form-check-input" id="id_when_1" required checked' in page
    assert 'value="2020-01-01"' in page and 'value="10:00"' in page
    assert '<option value="America/Sao_Paulo" selected>' in page
    assert 'aria-invalid="true" aria-describedby="schedule-errors" autofocus' in page and 'id="schedule-errors"' in page
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.scheduled_at) == ("draft", None)
    assert not Delivery.objects.exists()


def test_a_send_without_a_choice_says_to_choose(client, broadcaster, people):
    broadcast = _draft()
    client.force_login(broadcaster)
    response = client.post(reverse("broadcasts:send", args=[broadcast.pk]), {})
    assert response.status_code == 422
    assert "Choose when to send." in response.content.decode()
    assert Broadcast.objects.get().status == "draft"


def test_a_bad_form_on_a_page_left_open_after_the_sending_says_so(client, broadcaster, people):
    broadcast = _draft(status="sending")
    client.force_login(broadcaster)
    data = {"when": "later", "date": "2020-01-01", "time": "10:00", "time_zone": "Europe/Paris"}
    response = client.post(reverse("broadcasts:send", args=[broadcast.pk]), data, follow=True)
    assert "This broadcast has already been sent or scheduled." in response.content.decode()
    response = client.post(reverse("broadcasts:test", args=[broadcast.pk]), {"recipients": "nobody-here"}, follow=True)
    assert "No subscriber has the foreign id nobody-here." in response.content.decode()


def test_send_now_then_the_report(client, broadcaster, people, django_capture_on_commit_callbacks):
    set_opt_out(people[2], True)
    broadcast = _draft()
    client.force_login(broadcaster)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("broadcasts:send", args=[broadcast.pk]), {"when": "now"})
    assert response.url == broadcast.get_absolute_url()
    assert Broadcast.objects.get().status == "sending"
    actions.run_broadcast_now(broadcast.pk, sleep=lambda s: None)

    page = client.get(broadcast.get_absolute_url()).content.decode()
    assert "2 of 3 recipients handled" not in page
    assert "3 of 3 recipients handled" in page
    assert "Opted out of promotional messages" in page
    filtered = client.get(broadcast.get_absolute_url() + "?status=skipped").content.decode()
    assert people[2].first_name in filtered and people[0].first_name not in filtered

    exported = b"".join(
        client.get(reverse("broadcasts:export", args=[broadcast.pk]) + "?status=sent").streaming_content
    )
    rows = list(csv.reader(io.StringIO(exported.decode().lstrip("\ufeff"))))
    assert [row[2] for row in rows[1:]] == [people[0].foreign_id, people[1].foreign_id]


def test_a_schedule_in_the_past_is_refused(client, broadcaster, people):
    broadcast = _draft()
    client.force_login(broadcaster)
    data = {"when": "later", "date": "2020-01-01", "time": "10:00", "time_zone": "Europe/Paris"}
    response = client.post(reverse("broadcasts:send", args=[broadcast.pk]), data, follow=True)
    assert "That moment has passed" in response.content.decode()
    data["date"] = (timezone.now() + timedelta(days=2)).date().isoformat()
    client.post(reverse("broadcasts:send", args=[broadcast.pk]), data)
    broadcast.refresh_from_db()
    assert broadcast.status == "scheduled" and broadcast.schedule_timezone == "Europe/Paris"


def test_label_these_recipients_goes_through_the_bulk_engine(client, broadcaster, people, make_label):
    broadcast = _draft()
    set_opt_out(people[0], True)
    actions.start_broadcast(broadcast, by=broadcaster)
    actions.run_broadcast_now(broadcast.pk, sleep=lambda s: None)
    got_it = make_label("Got the spring sale")
    client.force_login(broadcaster)
    client.post(reverse("broadcasts:label", args=[broadcast.pk]), {"status": "sent", "labels": [got_it.pk]})

    operation = LabelOperation.objects.latest("pk")
    assert operation.filters["recipients"] == {"broadcast": broadcast.pk, "status": "sent"}
    carriers = SubscriberLabel.objects.filter(label=got_it).values_list("subscriber_id", flat=True)
    assert sorted(carriers) == [people[1].pk, people[2].pk]


def test_label_these_recipients_refuses_two_labels_of_one_exclusive_group(client, broadcaster, people, make_label):
    broadcast = _draft()
    actions.start_broadcast(broadcast, by=broadcaster)
    actions.run_broadcast_now(broadcast.pk, sleep=lambda s: None)
    plan = LabelGroup.objects.create(title="Plan", name="plan", exclusive=True)
    free, pro = make_label("Free", group=plan), make_label("Pro", group=plan)
    client.force_login(broadcaster)
    before = LabelOperation.objects.count()

    response = client.post(
        reverse("broadcasts:label", args=[broadcast.pk]), {"status": "sent", "labels": [free.pk, pro.pk]}, follow=True
    )

    assert response.status_code == 422 and "belong to one exclusive group" in response.content.decode()
    assert LabelOperation.objects.count() == before
    assert not SubscriberLabel.objects.filter(label__in=[free, pro]).exists()
    # The report comes back as the operator left it: the outcome and the labels still chosen.
    page = response.content.decode()
    chosen = re.findall(r'<input type="checkbox" name="labels" value="(\d+)"[^>]* checked>', page)
    assert sorted(chosen) == sorted([str(free.pk), str(pro.pk)])
    assert '<option value="sent" selected>' in page


def test_the_subscriber_page_shows_their_broadcasts_and_opt_out(client, broadcaster, people):
    broadcast = _draft()
    set_opt_out(people[0], True)
    actions.start_broadcast(broadcast, by=broadcaster)
    actions.run_broadcast_now(broadcast.pk, sleep=lambda s: None)
    client.force_login(broadcaster)
    detail = client.get(reverse("subscribers:detail", args=[people[0].pk])).content.decode()
    assert "Opted out on" in detail and reverse("broadcasts:subscriber", args=[people[0].pk]) in detail
    history = client.get(reverse("broadcasts:subscriber", args=[people[0].pk]), headers={"HX-Request": "true"})
    assert "Spring sale" in history.text and "Opted out of promotional messages" in history.text

    client.post(reverse("subscribers:opt_out", args=[people[0].pk]), {"opted_out": "0"})
    assert Subscriber.objects.get(pk=people[0].pk).opted_out_at is None


def test_pause_resume_and_cancel_from_the_page(client, broadcaster, people, django_capture_on_commit_callbacks):
    broadcast = _draft()
    client.force_login(broadcaster)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("broadcasts:send", args=[broadcast.pk]), {"when": "now"})
        client.post(reverse("broadcasts:pause", args=[broadcast.pk]))
        assert Broadcast.objects.get().status == "paused"
        client.post(reverse("broadcasts:resume", args=[broadcast.pk]))
        assert Broadcast.objects.get().status == "sending"
        client.post(reverse("broadcasts:cancel", args=[broadcast.pk]))
    assert Broadcast.objects.get().status == "cancelled"


def test_the_list_page_queries(client, broadcaster, people, django_assert_num_queries):
    for number in range(5):
        _draft(title=f"Broadcast {number}", created_by=broadcaster)
    client.force_login(broadcaster)
    client.get(reverse("broadcasts:list"))
    # session, user, the count, the page of broadcasts with their authors (permissions cached: hexasubs/permissions.py)
    with django_assert_num_queries(4):
        response = client.get(reverse("broadcasts:list"))
    assert response.content.decode().count("Broadcast ") >= 5


def test_the_broadcast_pages_in_french_have_no_english_left(client, broadcaster, people):
    from tests.test_i18n import _english_left

    draft = _draft(title="Soldes de printemps", text="Bonjour {first_name|toi}")
    done = _draft(title="Soldes d\u2019hiver", text="Bonjour")
    set_opt_out(people[1], True)
    actions.start_broadcast(done, by=broadcaster)
    actions.run_broadcast_now(done.pk, sleep=lambda s: None)
    client.force_login(broadcaster)
    french = {"Accept-Language": "fr"}
    pages = [
        reverse("broadcasts:list"),
        reverse("broadcasts:add") + "?label=vip",
        draft.get_absolute_url(),
        done.get_absolute_url(),
        reverse("broadcasts:console"),
        reverse("broadcasts:subscriber", args=[people[1].pk]),
        reverse("subscribers:detail", args=[people[1].pk]),
    ]
    leftovers = {}
    with translation.override("en"):  # the French requests leave their language active in this thread
        for url in pages:
            response = client.get(url, headers=french)
            assert response.status_code == 200, url
            if english := _english_left(response.content.decode()):
                leftovers[url] = english
    assert leftovers == {}
