"""Messenger and webhook channels against fake servers on 127.0.0.1: answers, limits, unreachable people, blocks."""

import json
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import override_settings
from django.utils import timezone

from broadcasts import actions
from broadcasts.connectors import Message, MessengerConnector, WebhookConnector
from broadcasts.models import Broadcast, ChannelThrottle, Delivery, DeliveryReason
from subscribers.actions import add_labels
from subscribers.models import Channel
from tests.fake_graph import FakeGraph
from webhooks.signing import verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def graph(settings):
    server = FakeGraph()
    settings.MESSENGER_GRAPH_URL = server.url + "/v23.0"
    settings.BROADCAST_BATCH_SIZE = 1  # one message at a time: the script's answers go out in order
    yield server
    server.stop()


@pytest.fixture
def vip(make_label):
    return make_label("VIP")


def _error(code, subcode=None, message="error"):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if subcode:
        error["error_subcode"] = subcode
    return {"error": error}


def _people(make_subscriber, channel, vip, count, *, seen=timedelta(hours=1)):
    made = [make_subscriber(channel=channel, last_seen_at=timezone.now() - seen) for _ in range(count)]
    add_labels(made, [vip])
    return made


def _send(**fields):
    fields.setdefault("title", "Sale")
    fields.setdefault("text", "Hi {first_name}")
    fields.setdefault("audience", {"filters": {"label": ["vip"]}})
    fields.setdefault("quick_replies", [{"title": "Yes", "payload": "YES"}])
    broadcast = Broadcast.objects.create(**fields)
    actions.start_broadcast(broadcast, by=None)
    return actions.run_broadcast_now(broadcast.pk, sleep=lambda seconds: None)


def test_messenger_sends_with_the_page_token_and_the_right_messaging_type(
    graph, messenger_channel, make_subscriber, vip
):
    people = _people(make_subscriber, messenger_channel, vip, 2)
    broadcast = _send()

    assert (broadcast.status, broadcast.sent_count) == ("done", 2)
    request = graph.requests[0]
    assert urlparse(request["path"]).path == "/v23.0/me/messages"
    assert parse_qs(urlparse(request["path"]).query)["access_token"] == ["page-token"]
    assert graph.bodies()[0] == {
        "recipient": {"id": people[0].foreign_id},
        "messaging_type": "UPDATE",
        "message": {
            "text": f"Hi {people[0].first_name}",
            "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "YES"}],
        },
    }
    assert set(Delivery.objects.values_list("message_id", flat=True)) == {"mid.1", "mid.2"}


def test_promotions_skip_people_outside_the_window_and_tagged_updates_reach_them(
    graph, messenger_channel, make_subscriber, vip
):
    _people(make_subscriber, messenger_channel, vip, 1, seen=timedelta(hours=23, minutes=30))
    promotion = _send()
    assert (promotion.sent_count, promotion.skipped_count) == (0, 1)
    assert Delivery.objects.get().reason == DeliveryReason.OUTSIDE_WINDOW
    assert graph.requests == []

    update = _send(title="Your order shipped", message_tag="POST_PURCHASE_UPDATE")
    assert update.sent_count == 1
    assert graph.bodies()[0]["messaging_type"] == "MESSAGE_TAG"
    assert graph.bodies()[0]["tag"] == "POST_PURCHASE_UPDATE"


def test_unreachable_people_and_window_errors_fail_for_good(graph, messenger_channel, make_subscriber, vip):
    _people(make_subscriber, messenger_channel, vip, 3)
    graph.script = [(400, _error(551, message="This person isn't available right now.")), (400, _error(10, 2018278))]
    broadcast = _send()

    assert (broadcast.status, broadcast.sent_count, broadcast.failed_count) == ("done", 1, 2)
    reasons = sorted(Delivery.objects.filter(status="failed").values_list("reason", flat=True))
    assert reasons == [DeliveryReason.OUTSIDE_WINDOW, DeliveryReason.UNREACHABLE]
    assert len(graph.requests) == 3  # never tried again


def test_transient_errors_are_retried_with_backoff(graph, messenger_channel, make_subscriber, vip, settings):
    settings.BROADCAST_RETRY_BASE_SECONDS = 0
    _people(make_subscriber, messenger_channel, vip, 1)
    graph.script = [(500, _error(2, message="Service temporarily unavailable")), (503, {})]
    broadcast = _send()  # each retry is due at once here: the same pass takes it again
    assert (broadcast.status, broadcast.sent_count) == ("done", 1)
    assert Delivery.objects.get().attempts == 3


def test_retries_end_after_the_last_attempt(graph, messenger_channel, make_subscriber, vip, settings):
    settings.BROADCAST_RETRY_BASE_SECONDS = 0
    _people(make_subscriber, messenger_channel, vip, 1)
    graph.script = [(500, {})] * actions.MAX_ATTEMPTS
    broadcast = _send()
    assert (broadcast.status, broadcast.failed_count) == ("done", 1)
    assert Delivery.objects.get().reason == DeliveryReason.RETRIES_EXHAUSTED


def test_rate_limit_answers_slow_the_channel_down(graph, messenger_channel, make_subscriber, vip):
    _people(make_subscriber, messenger_channel, vip, 2)
    graph.script = [(400, _error(613, message="Calls to this api have exceeded the rate limit."))]
    broadcast = _send()
    throttle = ChannelThrottle.objects.get(channel=messenger_channel)
    assert throttle.next_slot_at > timezone.now()
    delivery = Delivery.objects.filter(status="queued").get()
    assert delivery.next_attempt_at > timezone.now() and delivery.attempts == 0
    assert broadcast.sent_count == 1


def test_a_blocked_page_pauses_the_broadcast_with_the_reason(graph, messenger_channel, make_subscriber, vip):
    _people(make_subscriber, messenger_channel, vip, 3)
    graph.script = [(400, _error(10, 1893063, message="This Page is restricted from messaging."))]
    broadcast = _send()
    assert broadcast.status == "paused"
    assert "1893063" in broadcast.pause_reason and "restricted" in broadcast.pause_reason
    assert len(graph.requests) == 1
    assert Delivery.objects.filter(status="queued").count() == 3  # nothing was sent: all wait for Resume


def test_many_failures_pause_the_broadcast(graph, messenger_channel, make_subscriber, vip, monkeypatch):
    monkeypatch.setattr(actions, "ERROR_RATE_MINIMUM", 4)
    _people(make_subscriber, messenger_channel, vip, 6)
    graph.script = [(400, _error(100, message="Invalid parameter"))] * 6
    broadcast = _send()
    assert broadcast.status == "paused"
    assert "failed" in broadcast.pause_reason


def test_no_page_token_pauses_at_once(graph, messenger_channel, make_subscriber, vip):
    messenger_channel.settings = {}
    messenger_channel.save()
    _people(make_subscriber, messenger_channel, vip, 1)
    broadcast = _send()
    assert broadcast.status == "paused" and "page access token" in broadcast.pause_reason


def test_the_webhook_channel_posts_signed_messages_to_the_bot_runtime(make_subscriber, vip):
    server = FakeGraph()
    try:
        web = Channel.objects.get(name="web")
        web.settings = {"url": server.url + "/bot", "secret": "s3cret", "messages_per_second": 0}
        web.save()
        person = _people(make_subscriber, web, vip, 1, seen=timedelta(days=30))[0]
        broadcast = _send()
        assert (broadcast.status, broadcast.sent_count) == ("done", 1)  # no window on the web channel
        request = server.requests[0]
        headers = {name.lower(): value for name, value in request["headers"].items()}
        assert verify("s3cret", request["body"], headers["x-hexasubs-timestamp"], headers["x-hexasubs-signature"])
        body = json.loads(request["body"])
        assert body["subscriber"]["foreign_id"] == person.foreign_id
        assert body["message"]["text"] == f"Hi {person.first_name}"
    finally:
        server.stop()


def test_a_timeout_after_sending_is_unknown_and_never_resent(messenger_channel, make_subscriber):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    port = listener.getsockname()[1]
    try:
        connector = MessengerConnector(messenger_channel)
        connector.read_timeout = 0.5
        with override_settings(MESSENGER_GRAPH_URL=f"http://127.0.0.1:{port}"):
            outcome = connector.send(make_subscriber(), Message("hi"))
        connector.close()
    finally:
        listener.close()
    assert (outcome.kind, outcome.reason) == ("unknown", DeliveryReason.NO_ANSWER)


def test_a_refused_connection_is_retried(messenger_channel, make_subscriber, settings):
    settings.MESSENGER_GRAPH_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    connector = MessengerConnector(messenger_channel)
    assert connector.send(make_subscriber(), Message("hi")).kind == "retry"
    connector.close()
    web = Channel.objects.get(name="web")
    web.settings = {}
    assert WebhookConnector(web).send(make_subscriber(), Message("hi")).kind == "stop"


def test_a_group_goes_out_concurrently_each_message_once(make_subscriber, vip, settings):
    settings.BROADCAST_BATCH_SIZE = 8
    server = FakeGraph()
    try:
        web = Channel.objects.get(name="web")
        web.settings = {"url": server.url + "/bot", "secret": "s3cret", "messages_per_second": 0}
        web.save()
        people = _people(make_subscriber, web, vip, 20)
        broadcast = _send()
        assert (broadcast.status, broadcast.sent_count) == ("done", 20)
        recipients = [json.loads(request["body"])["subscriber"]["foreign_id"] for request in server.requests]
        assert sorted(recipients) == sorted(person.foreign_id for person in people)
        assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    finally:
        server.stop()
