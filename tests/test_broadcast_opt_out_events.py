"""Opting out (the bot heard STOP) and back in is announced to webhook endpoints, stored with the change."""

import json

import pytest
from django.db import transaction

from subscribers.actions import set_opt_out
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/channels/messenger/subscribers/{}/opt-out"


@pytest.fixture(autouse=True)
def quiet_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def _endpoint(events):
    return Endpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", events=list(events))


def _bodies():
    return [json.loads(body) for body in Delivery.objects.order_by("pk").values_list("body", flat=True)]


def test_stop_and_start_from_the_bot_api_send_opted_out_then_opted_in(api_client, make_subscriber):
    _endpoint([Event.OPTED_OUT, Event.OPTED_IN])
    ada = make_subscriber(foreign_id="psid-ada")

    api_client.put(URL.format("psid-ada"), {"opted_out": True}, content_type="application/json")
    api_client.put(URL.format("psid-ada"), {"opted_out": True}, content_type="application/json")  # no change
    api_client.put(URL.format("psid-ada"), {"opted_out": False}, content_type="application/json")

    bodies = _bodies()
    assert [body["event"] for body in bodies] == ["subscriber.opted_out", "subscriber.opted_in"]
    out, back = (body["data"] for body in bodies)
    assert out["subscriber"] == {"id": ada.pk, "channel": "messenger", "foreign_id": "psid-ada"}
    assert out["opted_out"] is True and out["opted_out_at"]
    assert back == {"subscriber": out["subscriber"], "opted_out": False, "opted_out_at": None}


def test_only_endpoints_listening_get_it_and_a_rollback_sends_nothing(make_subscriber):
    _endpoint([Event.LABELS_CHANGED])
    ada = make_subscriber()
    assert set_opt_out(ada, True)
    assert not Delivery.objects.exists()

    _endpoint([Event.OPTED_IN])
    with pytest.raises(RuntimeError), transaction.atomic():
        assert set_opt_out(ada, False)
        raise RuntimeError("the caller's transaction fails")
    assert not Delivery.objects.exists()
    ada.refresh_from_db()
    assert ada.opted_out_at is not None
