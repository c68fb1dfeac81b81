import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import transaction
from django.tasks import task_backends
from django.utils import timezone

from subscribers import events
from subscribers.actions import add_labels, change_labels
from subscribers.models import LabelOperation, Subscriber
from webhooks import signing
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event
from webhooks.tasks import MAX_ATTEMPTS, deliver, retry_delay

pytestmark = pytest.mark.django_db

SECRET = "whsec-test"


@pytest.fixture(autouse=True)
def queue(settings):
    """A task backend that records what is enqueued (and when it may run) without running it."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    return task_backends["default"]


def _endpoint(url="http://127.0.0.1:9/hook", events=tuple(Event.values)):
    return Endpoint.objects.create(url=url, secret=SECRET, events=list(events))


def _payloads(event=None):
    deliveries = Delivery.objects.order_by("pk")
    if event:
        deliveries = deliveries.filter(event=event)
    return [json.loads(delivery.body) for delivery in deliveries]


class Receiver(BaseHTTPRequestHandler):
    """Answers each POST with the next status in `statuses`, recording what it received."""

    statuses: list[int] = []
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).statuses.pop(0))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.statuses, Receiver.received = [], []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Receiver
    server.shutdown()
    server.server_close()


# Signing -------------------------------------------------------------------------------------------------


def test_a_receiver_verifies_the_signature_of_timestamp_and_body():
    body = b'{"event": "subscriber.created"}'
    headers = signing.signed_headers(SECRET, body)
    timestamp, signature = headers["X-Hexasubs-Timestamp"], headers["X-Hexasubs-Signature"]
    assert signing.verify(SECRET, body, timestamp, signature)
    assert not signing.verify(SECRET, body + b" ", timestamp, signature)
    assert not signing.verify("another secret", body, timestamp, signature)
    assert not signing.verify(SECRET, body, str(int(timestamp) + 1), signature)


def test_an_old_signature_is_refused_so_it_cannot_be_replayed():
    body = b"{}"
    old = int(time.time()) - 600
    headers = signing.signed_headers(SECRET, body, timestamp=old)
    assert not signing.verify(SECRET, body, headers["X-Hexasubs-Timestamp"], headers["X-Hexasubs-Signature"])


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signing.signature("k", 1700000000, b"{}") == f"v1={expected}"


# Events --------------------------------------------------------------------------------------------------


def test_a_bulk_label_change_is_announced_in_batches(
    make_subscriber, make_label, monkeypatch, queue, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(events, "CHUNK_SIZE", 3)
    _endpoint(events=[Event.LABELS_CHANGED])
    people = [make_subscriber() for _ in range(7)]
    vip = make_label("VIP", name="vip")

    with django_capture_on_commit_callbacks(execute=True):
        add_labels(Subscriber.objects.all(), [vip])

    payloads = _payloads()
    assert [len(payload["data"]["subscribers"]) for payload in payloads] == [3, 3, 1]
    operation = LabelOperation.objects.get()
    assert {payload["data"]["batch"] for payload in payloads} == {f"operation-{operation.pk}"}
    assert {payload["data"]["operation"] for payload in payloads} == {operation.pk}
    assert payloads[0]["event"] == "subscriber.labels_changed"
    assert payloads[0]["data"]["added"] == [{"name": "vip", "title": "VIP"}]
    listed = [row["foreign_id"] for payload in payloads for row in payload["data"]["subscribers"]]
    assert sorted(listed) == sorted(person.foreign_id for person in people)
    assert len(queue.results) == 3


def test_only_subscribers_whose_labels_changed_are_listed(
    make_subscriber, make_label, django_capture_on_commit_callbacks
):
    _endpoint()
    had_it, lacked_it = make_subscriber(), make_subscriber()
    vip = make_label("VIP", name="vip")
    had_it.labels.add(vip)

    with django_capture_on_commit_callbacks(execute=True):
        add_labels(Subscriber.objects.all(), [vip])

    [payload] = _payloads()
    assert [row["id"] for row in payload["data"]["subscribers"]] == [lacked_it.pk]


def test_one_subscriber_change_announces_additions_and_removals(
    make_subscriber, make_label, django_capture_on_commit_callbacks
):
    _endpoint()
    person = make_subscriber()
    vip, churned = make_label("VIP", name="vip"), make_label("Churned", name="churned")
    person.labels.add(churned)

    with django_capture_on_commit_callbacks(execute=True):
        change_labels(person, add=[vip], remove=[churned])

    [payload] = _payloads()
    assert (payload["data"]["added"], payload["data"]["removed"]) == (
        [{"name": "vip", "title": "VIP"}],
        [{"name": "churned", "title": "Churned"}],
    )
    assert payload["data"]["subscribers"] == [
        {"id": person.pk, "channel": person.channel.name, "foreign_id": person.foreign_id}
    ]
    assert payload["data"]["operation"] is None


def test_nothing_is_sent_without_a_listening_endpoint(
    make_subscriber, make_label, queue, django_capture_on_commit_callbacks
):
    _endpoint(events=[Event.SUBSCRIBER_CREATED])
    Endpoint.objects.create(url="http://127.0.0.1:9/off", secret=SECRET, events=Event.values, is_active=False)
    make_subscriber()

    with django_capture_on_commit_callbacks(execute=True):
        add_labels(Subscriber.objects.all(), [make_label("VIP")])

    assert not Delivery.objects.exists()
    assert queue.results == []


def test_a_rolled_back_change_announces_nothing(make_subscriber, make_label, django_capture_on_commit_callbacks):
    _endpoint()
    make_subscriber()
    vip = make_label("VIP")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        add_labels(Subscriber.objects.all(), [vip])
        raise RuntimeError

    assert not Delivery.objects.exists()


def test_the_api_announces_new_and_changed_subscribers_but_not_mere_visits(
    api_client, messenger, django_capture_on_commit_callbacks
):
    _endpoint()
    url = "/api/v1/channels/messenger/subscribers/psid-7"

    def put(body):
        with django_capture_on_commit_callbacks(execute=True):
            return api_client.put(url, json.dumps(body), content_type="application/json")

    put({"first_name": "Ada"})
    put({"first_name": "Ada"})
    put({"first_name": "Ada", "locale": "en-GB"})

    assert [delivery.event for delivery in Delivery.objects.order_by("pk")] == [
        Event.SUBSCRIBER_CREATED,
        Event.SUBSCRIBER_UPDATED,
    ]
    created, updated = _payloads()
    assert created["data"]["subscriber"]["foreign_id"] == "psid-7"
    assert updated["data"]["changed"] == ["locale"]
    assert updated["data"]["subscriber"]["locale"] == "en-GB"


def test_an_endpoint_that_cannot_be_queued_never_breaks_the_call(
    api_client, messenger, monkeypatch, queue, django_capture_on_commit_callbacks
):
    _endpoint()

    def broken_queue(*args):
        raise ConnectionError("queue down")

    monkeypatch.setattr(queue, "enqueue", broken_queue)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.put(
            "/api/v1/channels/messenger/subscribers/psid-8", "{}", content_type="application/json"
        )

    assert response.status_code == 201
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


# Delivery ------------------------------------------------------------------------------------------------


def _pending_delivery(url):
    return Delivery.objects.create(endpoint=_endpoint(url), event=Event.SUBSCRIBER_CREATED, body='{"n": 1}')


def test_a_failed_delivery_is_retried_later_then_succeeds(receiver, queue):
    url, server = receiver
    server.statuses = [500, 204]
    delivery = _pending_delivery(url)

    assert deliver.call(delivery.pk) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_status, delivery.last_error) == (
        1,
        500,
        "HTTP 500 Internal Server Error",
    )
    assert delivery.next_attempt_at - timezone.now() == pytest.approx(timedelta(seconds=30), abs=timedelta(seconds=5))
    [retry] = queue.results
    assert retry.args == [delivery.pk]
    assert retry.task.run_after == delivery.next_attempt_at

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # its time has come
    assert deliver.call(delivery.pk) == DeliveryStatus.SUCCEEDED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.SUCCEEDED, 2, "")
    assert delivery.delivered_at is not None
    assert len(queue.results) == 1


def test_the_receiver_can_verify_each_request(receiver):
    url, server = receiver
    server.statuses = [200]
    delivery = _pending_delivery(url)

    deliver.call(delivery.pk)

    [(headers, body)] = server.received
    assert body == b'{"n": 1}'
    assert headers["X-Hexasubs-Event"] == "subscriber.created"
    assert signing.verify(SECRET, body, headers["X-Hexasubs-Timestamp"], headers["X-Hexasubs-Signature"])


def test_the_backoff_doubles_and_is_capped():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(30) == timedelta(hours=6)


def test_it_gives_up_after_the_last_attempt(receiver, queue):
    url, server = receiver
    server.statuses = [503]
    delivery = _pending_delivery(url)
    Delivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS - 1)

    assert deliver.call(delivery.pk) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, MAX_ATTEMPTS, None)
    assert queue.results == []


def test_an_unreachable_endpoint_is_logged_and_retried(queue):
    delivery = _pending_delivery("http://127.0.0.1:9/nobody-listens")

    deliver.call(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.response_status is None
    assert "refused" in delivery.last_error.lower()
    assert len(queue.results) == 1
