"""Sending webhook deliveries: redirects, timeouts, stuck deliveries, inactive endpoints, staff retries.

Issue 15, items 4 and 5.
"""

import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Permission
from django.tasks import task_backends
from django.urls import reverse
from django.utils import timezone

from webhooks import tasks
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event
from webhooks.tasks import deliver, requeue_stale_deliveries, stale_after

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queue(settings):
    """A task backend that records what is enqueued without running it."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    return task_backends["default"]


class Receiver(BaseHTTPRequestHandler):
    """POST /redirect answers 302 to /landing; every request is recorded as (method, path, body)."""

    received: list[tuple[str, str, bytes]] = []

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append((self.command, self.path, self.rfile.read(length)))

    def do_POST(self):
        self._record()
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/landing")
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._record()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def _delivery(url="http://127.0.0.1:9/hook", *, is_active=True, **fields):
    endpoint = Endpoint.objects.create(url=url, secret="s", events=Event.values, is_active=is_active)
    return Delivery.objects.create(endpoint=endpoint, event=Event.SUBSCRIBER_CREATED, body='{"n": 1}', **fields)


def _ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


# Redirects and timeouts (item 5) ------------------------------------------------------------------------


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver, queue):
    delivery = _delivery(f"{receiver}/redirect")

    assert deliver.call(delivery.pk) == DeliveryStatus.PENDING

    delivery.refresh_from_db()
    assert delivery.delivered_at is None
    assert (delivery.attempts, delivery.response_status) == (1, 302)
    assert "redirects to /landing" in delivery.last_error
    assert Receiver.received == [("POST", "/redirect", b'{"n": 1}')]
    assert len(queue.results) == 1  # retried later, like any other failure


def test_a_receiver_that_never_answers_times_out_and_is_retried(silent_server, monkeypatch, queue):
    monkeypatch.setattr(tasks, "READ_TIMEOUT_SECONDS", 0.2)
    delivery = _delivery(silent_server)

    assert deliver.call(delivery.pk) == DeliveryStatus.PENDING

    delivery.refresh_from_db()
    assert delivery.response_status is None
    assert delivery.last_error.startswith("Timed out")
    assert delivery.attempt_started_at is None
    assert len(queue.results) == 1


def test_a_success_is_recorded_with_the_claim_released(receiver):
    delivery = _delivery(f"{receiver}/hook")

    assert deliver.call(delivery.pk) == DeliveryStatus.SUCCEEDED

    delivery.refresh_from_db()
    assert (delivery.response_status, delivery.attempt_started_at) == (204, None)


# One attempt at a time ----------------------------------------------------------------------------------


def test_a_delivery_being_sent_by_another_worker_is_skipped(receiver):
    delivery = _delivery(f"{receiver}/hook", attempt_started_at=_ago(seconds=5))

    assert deliver.call(delivery.pk) == "skipped"
    assert Receiver.received == []


def test_a_retry_that_comes_before_its_time_is_skipped(receiver):
    delivery = _delivery(f"{receiver}/hook", attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert deliver.call(delivery.pk) == "skipped"
    assert Receiver.received == []


# Inactive endpoints ---------------------------------------------------------------------------------------


def test_deactivating_an_endpoint_stops_the_retries_already_queued(receiver, queue):
    delivery = _delivery(f"{receiver}/hook", attempts=2)
    Endpoint.objects.update(is_active=False)

    assert deliver.call(delivery.pk) == DeliveryStatus.CANCELLED

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CANCELLED
    assert delivery.last_error == "Not sent: the endpoint is inactive."
    assert (delivery.attempts, delivery.next_attempt_at, delivery.attempt_started_at) == (2, None, None)
    assert Receiver.received == []
    assert queue.results == []


# The sweep (item 4) -------------------------------------------------------------------------------------


def test_a_delivery_whose_worker_died_mid_send_is_queued_again(queue):
    delivery = _delivery(attempts=1, attempt_started_at=_ago(minutes=30))

    assert requeue_stale_deliveries() == 1

    [queued] = queue.results
    assert queued.args == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.attempt_started_at is None


def test_a_delivery_that_was_never_queued_is_queued(queue):
    delivery = _delivery(created_at=_ago(minutes=30))

    assert requeue_stale_deliveries() == 1
    assert [result.args for result in queue.results] == [[delivery.pk]]


def test_a_retry_long_overdue_is_queued_again(queue):
    _delivery(created_at=_ago(hours=2), attempts=3, next_attempt_at=_ago(minutes=30))
    assert requeue_stale_deliveries() == 1


@pytest.mark.parametrize(
    "fields",
    [
        lambda: {"created_at": _ago(seconds=30)},
        lambda: {"created_at": _ago(hours=1), "attempts": 1, "attempt_started_at": _ago(seconds=30)},
        lambda: {"created_at": _ago(hours=1), "attempts": 3, "next_attempt_at": timezone.now() + timedelta(hours=1)},
        lambda: {"created_at": _ago(hours=1), "status": DeliveryStatus.SUCCEEDED},
        lambda: {"created_at": _ago(hours=1), "status": DeliveryStatus.FAILED},
        lambda: {"created_at": _ago(hours=1), "status": DeliveryStatus.CANCELLED},
    ],
    ids=["new", "being-sent", "retry-scheduled", "delivered", "failed", "cancelled"],
)
def test_deliveries_under_way_or_finished_are_left_alone(queue, fields):
    _delivery(**fields())
    assert requeue_stale_deliveries() == 0
    assert queue.results == []


def test_the_sweep_skips_inactive_endpoints(queue):
    _delivery(is_active=False, created_at=_ago(hours=1))
    assert requeue_stale_deliveries() == 0


def test_a_delivery_queued_again_is_left_alone_by_the_next_sweep(queue):
    _delivery(created_at=_ago(hours=1))
    now = timezone.now()
    assert requeue_stale_deliveries(now) == 1
    assert requeue_stale_deliveries(now + timedelta(seconds=15)) == 0
    assert requeue_stale_deliveries(now + stale_after() + timedelta(seconds=1)) == 1


def test_the_requeued_delivery_is_sent(receiver):
    delivery = _delivery(f"{receiver}/hook", created_at=_ago(hours=1), attempt_started_at=_ago(minutes=30))
    requeue_stale_deliveries()
    assert deliver.call(delivery.pk) == DeliveryStatus.SUCCEEDED


# Staff retry from the delivery log ------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _retry(staff_client, deliveries):
    return staff_client.post(
        reverse("admin:webhooks_delivery_changelist"),
        {"action": "retry_deliveries", "_selected_action": [delivery.pk for delivery in deliveries]},
        follow=True,
    )


def test_staff_retry_any_undelivered_delivery(staff_client, queue):
    stuck = _delivery(created_at=_ago(hours=1))
    failed = _delivery(status=DeliveryStatus.FAILED, attempts=8)
    cancelled = _delivery(status=DeliveryStatus.CANCELLED, attempts=2)
    delivered = _delivery(status=DeliveryStatus.SUCCEEDED, attempts=1)

    response = _retry(staff_client, [stuck, failed, cancelled, delivered])

    assert "3 deliveries queued again. 1 was delivered already and left alone." in response.text
    assert sorted(result.args[0] for result in queue.results) == sorted([stuck.pk, failed.pk, cancelled.pk])
    for delivery in (stuck, failed, cancelled):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.PENDING, 0, None)
    delivered.refresh_from_db()
    assert delivered.status == DeliveryStatus.SUCCEEDED


def test_a_retried_delivery_is_sent_at_once(staff_client, receiver):
    delivery = _delivery(f"{receiver}/hook", attempts=3, next_attempt_at=timezone.now() + timedelta(hours=2))
    _retry(staff_client, [delivery])
    assert deliver.call(delivery.pk) == DeliveryStatus.SUCCEEDED


def test_staff_who_may_read_the_log_may_retry(client, django_user_model, queue):
    reader = django_user_model.objects.create_user("rita", password="password", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(reader)
    failed = _delivery(status=DeliveryStatus.FAILED, attempts=8)

    response = _retry(client, [failed])

    assert "1 delivery queued again." in response.text
    assert [result.args for result in queue.results] == [[failed.pk]]
