"""`manage.py create_api_key` for scripted deployments (issue 15, production operation)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from api.models import ApiKey

pytestmark = pytest.mark.django_db


def _create(*args):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_it_prints_a_working_key_once_and_stores_only_its_hash(messenger):
    full_key, note = _create("Deploy bot")

    key = ApiKey.objects.get()
    assert (key.name, key.rate_limit_per_minute, list(key.channels.all())) == ("Deploy bot", 600, [])
    assert full_key.startswith(f"hxs_{key.prefix}_")
    assert full_key.split("_")[2] not in str(ApiKey.objects.values().get())
    assert "shown this once" in note
    assert Client(headers={"Authorization": f"Bearer {full_key}"}).get("/api/v1/labels").status_code == 200


def test_it_limits_the_key_to_channels_and_a_rate(messenger):
    _create("Web bot", "--channel", "web", "--channel", "messenger", "--rate-limit", "60")
    key = ApiKey.objects.get()
    assert sorted(channel.name for channel in key.channels.all()) == ["messenger", "web"]
    assert key.rate_limit_per_minute == 60


def test_an_unknown_channel_is_refused_and_nothing_is_created(messenger):
    with pytest.raises(CommandError, match=r"There is no channel called telegram\. The channels are: "):
        _create("Bot", "--channel", "telegram")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"), [(["  "], "Give the key a name"), (["Bot", "--rate-limit", "0"], "at least 1")]
)
def test_it_refuses_a_blank_name_or_a_zero_rate(args, message):
    with pytest.raises(CommandError, match=message):
        _create(*args)


def test_the_key_is_managed_in_the_admin_like_any_other(client, admin_user, messenger):
    _create("Deploy bot")
    client.force_login(admin_user)
    assert "Deploy bot" in client.get("/admin/api/apikey/").text
