"""A real `manage.py db_worker` killed with SIGKILL in the middle of a broadcast never sends anything twice.

The worker sends to a fake Graph API on 127.0.0.1 that answers slowly, so a
group of messages is in flight when it dies. Only that group, marked "sending"
and never confirmed, becomes "unknown" (counted and listed in the report);
everything else it had not marked stays queued, and another worker, started
by the sweep, sends it: every recipient gets the message exactly once, except
those unknown ones, which got it at most once.
"""

import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from broadcasts import actions, queries
from broadcasts.models import Broadcast, Delivery, DeliveryReason
from subscribers.models import Channel, Subscriber
from tests.fake_graph import FakeGraph
from tests.test_worker_kill import WAIT, start_worker  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

PEOPLE = 600
ANSWER_SECONDS = 0.05  # the fake Graph API's slowness: a group stays in flight long enough to be killed in


@pytest.fixture
def graph(monkeypatch):
    """The fake Graph API, named in the environment the workers are started with (before start_worker)."""
    server = FakeGraph(keep_alive=True, delay=ANSWER_SECONDS)
    monkeypatch.setenv("MESSENGER_GRAPH_URL", server.url + "/v23.0")
    monkeypatch.setenv("BROADCAST_WORKERS", "1")
    yield server
    server.stop()


def _wait_until(condition, what, worker):
    deadline = time.monotonic() + WAIT
    while not condition():
        if worker.poll() is not None:
            pytest.fail(f"The worker exited with {worker.returncode} while waiting until {what}.")
        if time.monotonic() > deadline:
            pytest.fail(f"Gave up after {WAIT} s waiting until {what}.")
        time.sleep(0.005)


def test_a_worker_killed_mid_send_leaves_only_its_messages_in_flight_unknown(graph, start_worker):  # noqa: F811
    messenger = Channel.objects.get(name="messenger")
    messenger.settings = {"page_access_token": "page-token", "messages_per_second": 0}
    messenger.save()
    seen = timezone.now() - timedelta(hours=1)
    Subscriber.objects.bulk_create(
        Subscriber(channel=messenger, foreign_id=f"psid-{number}", first_name=f"P{number}", last_seen_at=seen)
        for number in range(PEOPLE)
    )
    broadcast = Broadcast.objects.create(title="Flash sale", text="Hi {first_name}", audience={"filters": {}})
    assert actions.start_broadcast(broadcast, by=None)

    def state():
        return Broadcast.objects.get(pk=broadcast.pk)

    def in_flight():
        return set(
            Delivery.objects.filter(broadcast=broadcast, status="sending").values_list("subscriber_id", flat=True)
        )

    first = start_worker()
    _wait_until(lambda: state().sent_count >= 100 and in_flight(), "a hundred were sent and more are in flight", first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=WAIT)

    killed = state()
    marked = in_flight()
    assert killed.status == "sending" and killed.sent_count < PEOPLE, "the worker finished before it could be killed"
    assert 0 < len(marked) <= actions.BATCH_SIZE, "only the group in flight is marked"
    others = Delivery.objects.filter(broadcast=broadcast).exclude(status__in=["queued", "sent", "sending"])
    assert list(others.values_list("status", "reason", "detail")) == []
    time.sleep(ANSWER_SECONDS * 4)  # requests the dead worker sent have all reached the fake Graph API by now
    received_before = Counter(graph.recipients())

    # The sweep of any worker, once the broadcast has been silent for STALE_AFTER: the marked ones become
    # unknown, the broadcast is queued again, and a new worker sends the rest.
    later = timezone.now() + max(actions.STALE_AFTER, actions.STALE_SENDING) + timedelta(seconds=1)
    swept = actions.sweep_broadcasts(now=later)
    assert swept == {"unknown": len(marked), "queued": [broadcast.pk]}
    second = start_worker()
    _wait_until(lambda: state().is_finished, "the broadcast finished", second)

    done = state()
    received = Counter(graph.recipients())
    deliveries = dict(
        Delivery.objects.filter(broadcast=broadcast).values_list("subscriber__foreign_id", "status").order_by()
    )
    unknown = {foreign_id for foreign_id, status in deliveries.items() if status == "unknown"}
    assert done.status == "done"
    extra = Delivery.objects.filter(broadcast=broadcast, status="unknown").exclude(subscriber_id__in=marked)
    assert list(extra.values_list("reason", "detail", "attempts")[:5]) == []
    assert set(deliveries.values()) == {"sent", "unknown"}, "nothing left queued or sending"
    assert unknown == set(Subscriber.objects.filter(pk__in=marked).values_list("foreign_id", flat=True))
    assert max(received.values()) == 1, "nobody got the message twice"
    assert all(received[foreign_id] == 1 for foreign_id, status in deliveries.items() if status == "sent")
    assert all(received[foreign_id] == received_before[foreign_id] for foreign_id in unknown), "never resent"
    assert (done.sent_count, done.unknown_count, done.total_count) == (PEOPLE - len(unknown), len(unknown), PEOPLE)
    # Counted and listed in the report, with the reason.
    lines = {(line.status, line.reason): line.count for line in queries.report_lines(done)}
    assert lines == {("sent", ""): PEOPLE - len(unknown), ("unknown", DeliveryReason.WORKER_DIED): len(unknown)}
    listed = queries.deliveries_for_report(done).filter(status="unknown")
    assert {delivery.subscriber.foreign_id for delivery in listed} == unknown
