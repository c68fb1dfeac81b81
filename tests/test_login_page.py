import pytest
from django.urls import reverse

from hexasubs.management.commands.prepare_demo import DEMO_PASSWORD, DEMO_USERNAME

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_user(django_user_model):
    return django_user_model.objects.create_superuser(DEMO_USERNAME, password=DEMO_PASSWORD)


def test_in_development_the_login_page_says_how_to_log_in_as_the_demo_user(client, settings, demo_user):
    settings.DEBUG = True
    html = client.get(reverse("login")).text
    assert f"log in as <strong>{DEMO_USERNAME}</strong> with the password <strong>{DEMO_PASSWORD}</strong>" in html


def test_in_production_it_does_not(client, demo_user):
    assert DEMO_PASSWORD not in client.get(reverse("login")).text


def test_nor_once_the_demo_password_was_changed(client, settings, demo_user):
    settings.DEBUG = True
    demo_user.set_password("something-else-entirely")
    demo_user.save()
    assert DEMO_PASSWORD not in client.get(reverse("login")).text


def test_the_login_page_speaks_of_logging_in_and_offers_the_languages(client):
    html = client.get(reverse("login")).text
    assert "Log in to manage your chatbot's subscribers." in html and "Sign in" not in html
    assert 'name="language" value="fr"' in html
