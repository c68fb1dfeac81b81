"""Password reset only where e-mail can be sent: issue 15, item 7."""

import pytest
from django.core import mail
from django.urls import reverse

from tests.test_settings import _manage

pytestmark = pytest.mark.django_db


def test_without_e_mail_the_login_page_offers_no_reset(client, settings):
    settings.EMAIL_CONFIGURED = False
    assert "Forgot password?" not in client.get(reverse("login")).text


def test_without_e_mail_the_reset_page_says_whom_to_ask_instead_of_pretending(client, settings, operator):
    settings.EMAIL_CONFIGURED = False
    page = client.get(reverse("password_reset"))
    assert "Ask an administrator" in page.text
    assert 'name="email"' not in page.text
    response = client.post(reverse("password_reset"), {"email": "olivia@example.com"})
    assert response.status_code == 200
    assert "Ask an administrator" in response.text
    assert mail.outbox == []


@pytest.fixture
def e_mail(settings):
    settings.EMAIL_CONFIGURED = True
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def test_with_e_mail_the_login_page_links_the_reset_and_the_mail_is_sent(client, e_mail, operator):
    operator.email = "olivia@example.com"
    operator.save()
    assert reverse("password_reset") in client.get(reverse("login")).text

    response = client.post(reverse("password_reset"), {"email": "olivia@example.com"})

    assert response.url == reverse("password_reset_done")
    [message] = mail.outbox
    assert message.to == ["olivia@example.com"]
    assert "Check your e-mail" in client.get(response.url).text


def test_the_link_in_the_mail_lets_the_person_choose_a_new_password(client, e_mail, operator):
    operator.email = "olivia@example.com"
    operator.save()
    client.post(reverse("password_reset"), {"email": "olivia@example.com"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line).strip()

    form = client.get(link, follow=True)
    assert "Choose a new password" in form.text
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-new-Passw0rd!", "new_password2": "a-new-Passw0rd!"}
    )
    assert done.url == reverse("password_reset_complete")
    operator.refresh_from_db()
    assert operator.check_password("a-new-Passw0rd!")


def test_production_without_email_url_has_no_mailer_that_pretends():
    code = "from django.conf import settings; print(settings.EMAIL_CONFIGURED, settings.MAILERS)"
    result = _manage("shell", "--no-imports", "-c", code, SECRET_KEY="k" * 50)
    assert result.stdout.split() == ["False", "{}"], result.stderr


def test_development_prints_mails_on_the_console():
    code = "from django.conf import settings; print(settings.EMAIL_CONFIGURED, settings.MAILERS['default']['BACKEND'])"
    result = _manage("shell", "--no-imports", "-c", code, DEBUG="1")
    assert result.stdout.split() == ["True", "django.core.mail.backends.console.EmailBackend"], result.stderr


def test_email_url_configures_the_smtp_mailer():
    code = "from django.conf import settings; print(settings.EMAIL_CONFIGURED, settings.MAILERS['default'])"
    result = _manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        SECRET_KEY="k" * 50,
        EMAIL_URL="smtp+tls://robot:s3cret@smtp.example.com:587",
    )
    assert result.stdout.startswith("True {'BACKEND': 'django.core.mail.backends.smtp.EmailBackend'"), result.stderr
    for option in ("'host': 'smtp.example.com'", "'port': 587", "'username': 'robot'", "'use_tls': True"):
        assert option in result.stdout


def test_a_malformed_email_url_stops_the_start():
    result = _manage("check", SECRET_KEY="k" * 50, EMAIL_URL="pigeon://coop")
    assert result.returncode != 0
    assert "The environment variable EMAIL_URL is malformed" in result.stderr
