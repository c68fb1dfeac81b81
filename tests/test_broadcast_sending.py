"""The sending engine on the console channel: freeze, claim, send, confirm; skips, pause, resume, cancel, crashes."""

import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from broadcasts import actions
from broadcasts.models import Broadcast, ConsoleMessage, Delivery, DeliveryReason, DeliveryStatus
from subscribers.actions import add_labels, set_opt_out
from subscribers.models import Channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(db):
    return Channel.objects.get(name="console")


@pytest.fixture
def vip(make_label):
    return make_label("VIP")


@pytest.fixture
def people(make_subscriber, console, vip):
    """Six console subscribers seen an hour ago, five of them VIP."""
    seen = timezone.now() - timedelta(hours=1)
    made = [make_subscriber(channel=console, last_seen_at=seen) for _ in range(6)]
    add_labels(made[:5], [vip])
    return made


def _broadcast(**fields):
    fields.setdefault("title", "Spring sale")
    fields.setdefault("text", "Hello {first_name|there}!")
    fields.setdefault("audience", {"filters": {"label": ["vip"]}})
    return Broadcast.objects.create(**fields)


def _send_now(broadcast, user=None):
    assert actions.start_broadcast(broadcast, by=user)
    return actions.run_broadcast_now(broadcast.pk, sleep=lambda seconds: None)


def test_it_sends_a_label_targeted_broadcast_on_the_console(people, vip):
    broadcast = _send_now(_broadcast())

    assert broadcast.status == Broadcast.Status.DONE
    assert (broadcast.total_count, broadcast.sent_count, broadcast.skipped_count) == (5, 5, 0)
    assert sorted(ConsoleMessage.objects.values_list("subscriber_id", flat=True)) == [p.pk for p in people[:5]]
    assert ConsoleMessage.objects.get(subscriber=people[0]).text == f"Hello {people[0].first_name}!"
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_opted_out_people_are_skipped_with_the_reason(people):
    set_opt_out(people[1], True)
    broadcast = _send_now(_broadcast())

    assert (broadcast.sent_count, broadcast.skipped_count) == (4, 1)
    skipped = Delivery.objects.get(status=DeliveryStatus.SKIPPED)
    assert (skipped.subscriber_id, skipped.reason) == (people[1].pk, DeliveryReason.OPTED_OUT)
    assert not ConsoleMessage.objects.filter(subscriber=people[1]).exists()


def test_the_frequency_cap_skips_those_who_got_a_promotion_today(people, settings):
    settings.BROADCAST_FREQUENCY_CAP = 1
    _send_now(_broadcast(audience={"filters": {"q": people[0].foreign_id}}))
    second = _send_now(_broadcast(title="Second"))

    assert (second.sent_count, second.skipped_count) == (4, 1)
    assert Delivery.objects.get(broadcast=second, status="skipped").reason == DeliveryReason.FREQUENCY_CAP


def test_a_tagged_update_is_not_capped(people, settings):
    settings.BROADCAST_FREQUENCY_CAP = 1
    _send_now(_broadcast())
    update = _send_now(_broadcast(title="Your order", message_tag="POST_PURCHASE_UPDATE"))
    assert update.sent_count == 5


def test_a_stop_heard_while_sending_is_respected(people):
    broadcast = _broadcast()
    actions.start_broadcast(broadcast, by=None)
    while actions._freeze_chunk(broadcast.pk):
        pass
    set_opt_out(people[2], True)
    broadcast = actions.run_broadcast_now(broadcast.pk, sleep=lambda seconds: None)
    assert (broadcast.sent_count, broadcast.skipped_count) == (4, 1)
    assert Delivery.objects.get(subscriber=people[2]).reason == DeliveryReason.OPTED_OUT


def test_a_crash_between_mark_and_confirm_leaves_unknown_and_never_resends(people, settings):
    settings.BROADCAST_BATCH_SIZE = 2
    broadcast = _broadcast()
    actions.start_broadcast(broadcast, by=None)
    while actions._freeze_chunk(broadcast.pk):
        pass

    def crash(claimed):
        raise SystemExit("the worker died")

    with pytest.raises(SystemExit):
        actions.send_batches(broadcast.pk, after_mark=crash)
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 2

    # Another worker goes on with the rest; the two marked stay as they are.
    actions.send_batches(broadcast.pk, sleep=lambda seconds: None)
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.SENDING
    assert broadcast.sent_count == 3

    # The sweep, once they are stale: unknown, counted, and the broadcast is over.
    result = actions.sweep_broadcasts(now=timezone.now() + actions.STALE_SENDING + timedelta(seconds=1))
    assert result["unknown"] == 2
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.unknown_count, broadcast.sent_count) == ("done", 2, 3)
    assert set(Delivery.objects.filter(status="unknown").values_list("reason", flat=True)) == {"worker_died"}
    assert ConsoleMessage.objects.count() == 3
    actions.send_batches(broadcast.pk)
    assert ConsoleMessage.objects.count() == 3


def test_the_sweep_finds_dead_workers_deliveries_of_paused_and_cancelled_broadcasts(people, settings):
    """The sweep looks broadcast by broadcast: a broadcast paused or cancelled since the crash is looked at too."""
    settings.BROADCAST_BATCH_SIZE = 1
    broadcasts = [_broadcast(title=title) for title in ("Paused", "Cancelled", "Sending")]
    for broadcast in broadcasts:
        actions.start_broadcast(broadcast, by=None)
        while actions._freeze_chunk(broadcast.pk):
            pass
        with pytest.raises(SystemExit):
            actions.send_batches(broadcast.pk, after_mark=lambda claimed: sys.exit("the worker died"))
    assert actions.pause_broadcast(broadcasts[0]) and actions.cancel_broadcast(broadcasts[1])
    assert actions.sweep_broadcasts()["unknown"] == 0  # not stale yet
    later = timezone.now() + actions.STALE_SENDING + timedelta(seconds=1)
    assert actions.sweep_broadcasts(now=later)["unknown"] == 3
    assert not Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
    assert [b.unknown_count for b in Broadcast.objects.order_by("pk")] == [1, 1, 1]
    assert Broadcast.objects.get(title="Sending").status == Broadcast.Status.SENDING  # four still queued
    assert actions.sweep_broadcasts(now=later)["unknown"] == 0


def test_pause_resume_and_cancel(people, settings):
    settings.BROADCAST_BATCH_SIZE = 2
    broadcast = _broadcast()
    actions.start_broadcast(broadcast, by=None)
    while actions._freeze_chunk(broadcast.pk):
        pass
    actions.send_batches(broadcast.pk, max_batches=1)
    assert actions.pause_broadcast(broadcast)
    assert actions.send_batches(broadcast.pk) == 0
    assert ConsoleMessage.objects.count() == 2

    assert actions.resume_broadcast(broadcast)
    actions.send_batches(broadcast.pk, max_batches=1)
    assert actions.cancel_broadcast(broadcast)
    assert actions.send_batches(broadcast.pk) == 0
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.sent_count, broadcast.queued_count) == ("cancelled", 4, 1)
    assert not actions.resume_broadcast(broadcast)


def test_a_scheduled_broadcast_waits_for_its_time(people):
    broadcast = _broadcast()
    later = timezone.now() + timedelta(hours=2)
    assert actions.start_broadcast(broadcast, by=None, at=later, timezone_name="Europe/Paris")
    assert broadcast.status == Broadcast.Status.SCHEDULED
    actions.run_broadcast_now(broadcast.pk)
    assert Broadcast.objects.get().status == Broadcast.Status.SCHEDULED
    assert actions.sweep_broadcasts()["queued"] == []

    Broadcast.objects.update(scheduled_at=timezone.now() - timedelta(seconds=1))
    assert actions.run_broadcast_now(broadcast.pk, sleep=lambda s: None).status == Broadcast.Status.DONE


def test_a_stalled_broadcast_is_queued_again_by_one_sweep(people):
    broadcast = _broadcast()
    actions.start_broadcast(broadcast, by=None)
    later = timezone.now() + actions.STALE_AFTER + timedelta(seconds=1)
    assert actions.sweep_broadcasts(now=later)["queued"] == [broadcast.pk]
    assert actions.sweep_broadcasts(now=later)["queued"] == []


def test_the_freeze_resumes_in_chunks(people, settings, monkeypatch):
    monkeypatch.setattr(actions, "FREEZE_CHUNK", 2)
    broadcast = _broadcast()
    actions.start_broadcast(broadcast, by=None)
    assert actions._freeze_chunk(broadcast.pk)
    broadcast.refresh_from_db()
    assert broadcast.frozen_at is None and 0 < broadcast.total_count < 5
    assert Delivery.objects.count() == broadcast.total_count
    # A crash in the middle of a chunk leaves none of its rows: they commit with `frozen_up_to`.
    with monkeypatch.context() as crash:
        crash.setattr(Broadcast, "save", lambda self, *args, **kwargs: sys.exit("the worker died"))
        with pytest.raises(SystemExit):
            actions._freeze_chunk(broadcast.pk)
    assert Delivery.objects.count() == broadcast.total_count
    while actions._freeze_chunk(broadcast.pk):
        pass
    broadcast.refresh_from_db()
    assert Delivery.objects.count() == broadcast.total_count == 5


def test_an_inactive_channel_skips_its_people(people, console):
    console.is_active = False
    console.save()
    broadcast = _send_now(_broadcast())
    assert (broadcast.status, broadcast.skipped_count, broadcast.sent_count) == ("done", 5, 0)
    assert set(Delivery.objects.values_list("reason", flat=True)) == {DeliveryReason.CHANNEL_INACTIVE}


def test_the_rate_limit_spaces_the_sends(people, console):
    console.settings = {"messages_per_second": 10}
    console.save()
    waits = []
    broadcast = _broadcast()
    actions.start_broadcast(broadcast, by=None)
    actions.run_broadcast_now(broadcast.pk, sleep=waits.append)
    # Five sends 0.1 s apart: the last waits 0.4 s from the first (the test's sleep does not sleep).
    assert len(waits) >= 4
    assert max(waits) == pytest.approx(0.4, abs=0.05)
