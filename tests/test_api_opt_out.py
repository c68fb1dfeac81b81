"""PUT /api/v1/channels/{channel}/subscribers/{foreign_id}/opt-out: the bot heard STOP (or asks again)."""

import pytest

from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db

URL = "/api/v1/channels/messenger/subscribers/{}/opt-out"


def test_stop_opts_the_subscriber_out_without_touching_the_profile_date(api_client, make_subscriber):
    ada = make_subscriber(foreign_id="psid-ada")
    updated = ada.updated_at
    response = api_client.put(URL.format("psid-ada"), {"opted_out": True}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["opted_out"] is True and response.json()["opted_out_at"]
    ada.refresh_from_db()
    assert ada.opted_out_at is not None and ada.updated_at == updated

    again = api_client.put(URL.format("psid-ada"), {"opted_out": True}, content_type="application/json")
    assert again.json()["opted_out_at"] == response.json()["opted_out_at"]  # the first STOP's time stays

    back = api_client.put(URL.format("psid-ada"), {"opted_out": False}, content_type="application/json")
    assert back.json() == {"opted_out": False, "opted_out_at": None}
    assert Subscriber.objects.get().opted_out_at is None


def test_an_unknown_subscriber_or_a_bad_body_is_refused(api_client, make_subscriber):
    make_subscriber(foreign_id="psid-1")
    assert api_client.put(URL.format("nobody"), {"opted_out": True}, content_type="application/json").status_code == 404
    bad = api_client.put(URL.format("psid-1"), {"opted_out": "maybe", "x": 1}, content_type="application/json")
    assert bad.status_code == 422


@pytest.mark.parametrize("value", ["yes", "off", "true", 1, 0, None])
def test_only_true_or_false_answers_whether_they_said_stop(api_client, make_subscriber, value):
    ada = make_subscriber(foreign_id="psid-ada")
    response = api_client.put(URL.format("psid-ada"), {"opted_out": value}, content_type="application/json")
    assert response.status_code == 422
    ada.refresh_from_db()
    assert ada.opted_out_at is None
