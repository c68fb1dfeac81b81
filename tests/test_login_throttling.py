"""Login throttling (django-axes): issue 15, item 1."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _log_in(client, username="olivia", password="password", url=None, **extra):
    return client.post(url or reverse("login"), {"username": username, "password": password}, **extra)


def _fail(client, times, **kwargs):
    return [_log_in(client, password="wrong", **kwargs).status_code for _ in range(times)]


def test_after_too_many_wrong_passwords_even_the_right_one_is_refused(client, operator):
    assert _fail(client, 3) == [200, 200, 429]

    response = _log_in(client)

    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert "Try again in 15 minutes" in response.text
    assert "_auth_user_id" not in client.session


def test_fewer_failures_than_the_limit_still_let_the_person_in(client, operator):
    _fail(client, 2)
    assert _log_in(client).url == reverse("home")


def test_a_success_forgets_the_earlier_failures(client, operator):
    _fail(client, 2)
    _log_in(client)
    client.logout()
    _fail(client, 2)
    assert _log_in(client).url == reverse("home")


def test_the_username_is_locked_from_any_address(operator):
    _fail(Client(REMOTE_ADDR="203.0.113.1"), 3)
    assert _log_in(Client(REMOTE_ADDR="203.0.113.2")).status_code == 429


def test_an_address_is_locked_for_every_username(operator, label_manager):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for username in ("a", "b", "c"):
        _log_in(attacker, username=username, password="wrong")
    assert _log_in(attacker, username="liam").status_code == 429
    assert _log_in(Client(REMOTE_ADDR="198.51.100.7"), username="liam").url == reverse("home")


def test_behind_the_proxy_the_client_is_the_address_the_proxy_added(settings, operator):
    settings.BEHIND_TLS_PROXY = True
    for claimed in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        _log_in(Client(), username="nobody", password="wrong", HTTP_X_FORWARDED_FOR=f"{claimed}, 203.0.113.5")
    assert _log_in(Client(), HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert _log_in(Client(), HTTP_X_FORWARDED_FOR="198.51.100.1").url == reverse("home")


def test_the_admin_login_is_throttled_too(client, admin_user):
    url = reverse("admin:login")
    _fail(client, 3, username="root", url=url)
    response = _log_in(client, username="root", url=url)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_ends_after_the_cool_off(client, operator, settings):
    _fail(client, 3)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert _log_in(client).url == reverse("home")
