import re

import pytest
from django.test import Client
from django.urls import reverse

from api.models import ApiKey
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _create_key(staff_client, **fields):
    response = staff_client.post(
        reverse("admin:api_apikey_add"), {"name": "Messenger bot", "rate_limit_per_minute": 600, **fields}, follow=True
    )
    assert response.status_code == 200
    return re.search(r'value="(hxs_[^"]+)"', response.text).group(1), response


def test_reloading_the_page_that_shows_a_new_key_makes_no_other_key_and_shows_it_no_more(staff_client):
    full_key, response = _create_key(staff_client)
    [(shown_at, _status)] = response.redirect_chain
    again = staff_client.get(shown_at, follow=True)
    assert ApiKey.objects.count() == 1
    assert full_key not in again.text and "A key is shown once" in again.text


def test_staff_create_a_key_and_see_it_once(staff_client, admin_user):
    full_key, response = _create_key(staff_client)

    assert "will not be shown again" in response.text
    key = ApiKey.objects.get()
    assert key.created_by == admin_user
    assert full_key.startswith(f"hxs_{key.prefix}_")
    assert full_key not in staff_client.get(reverse("admin:api_apikey_change", args=[key.pk])).text
    assert full_key not in staff_client.get(reverse("admin:api_apikey_changelist")).text
    api = Client(headers={"Authorization": f"Bearer {full_key}"})
    assert api.get("/api/v1/labels").status_code == 200


def test_staff_limit_a_key_to_channels(staff_client, messenger):
    full_key, _response = _create_key(staff_client, channels=[messenger.pk])
    assert list(ApiKey.objects.get().channels.all()) == [messenger]
    api = Client(headers={"Authorization": f"Bearer {full_key}"})
    assert api.get("/api/v1/channels/web/subscribers/x").status_code == 403


def test_staff_revoke_keys_from_the_list(staff_client):
    full_key, _response = _create_key(staff_client)
    response = staff_client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [ApiKey.objects.get().pk]},
        follow=True,
    )
    assert "1 API key revoked." in response.text
    assert ApiKey.objects.get().revoked_at is not None
    assert Client(headers={"Authorization": f"Bearer {full_key}"}).get("/api/v1/labels").status_code == 401


def test_staff_configure_a_webhook_endpoint(staff_client):
    response = staff_client.post(
        reverse("admin:webhooks_endpoint_add"),
        {
            "url": "https://bots.example.com/hooks",
            "secret": "s3cret",
            "events": [Event.LABELS_CHANGED],
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Endpoint.objects.get().events == ["subscriber.labels_changed"]


def test_staff_read_the_delivery_log(staff_client):
    endpoint = Endpoint.objects.create(url="https://bots.example.com/hooks", secret="s", events=Event.values)
    delivery = Delivery.objects.create(
        endpoint=endpoint, event=Event.SUBSCRIBER_CREATED, body="{}", attempts=3, last_error="HTTP 502 Bad Gateway"
    )
    assert (
        "HTTP 502 Bad Gateway" in staff_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).text
    )
    changelist = staff_client.get(reverse("admin:webhooks_delivery_changelist"), {"status": DeliveryStatus.PENDING})
    assert "bots.example.com" in changelist.text


def test_the_docs_are_for_staff_only(operator, staff_client):
    client = Client()
    # Logged out, one logs in to the console, not to the admin.
    assert client.get("/api/v1/docs")["Location"] == f"{reverse('login')}?next=/api/v1/docs"
    assert client.get("/api/v1/openapi.json")["Location"] == f"{reverse('login')}?next=/api/v1/openapi.json"
    client.force_login(operator)
    assert client.get("/api/v1/docs").status_code == 403
    assert client.get("/api/v1/openapi.json").status_code == 403
    docs = staff_client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "ninja/swagger-ui-bundle.js" in docs.text
    assert staff_client.get("/api/v1/openapi.json").json()["info"]["title"] == "Hexasubs bot API"


def test_the_docs_are_a_page_of_the_console(staff_client):
    html = staff_client.get("/api/v1/docs").text
    assert 'aria-label="Side menu"' in html and 'id="swagger-ui"' in html
    assert 'class="nav-link active" aria-current="page" href="/api/v1/docs"' in html


def test_bot_developers_read_the_schema_with_an_api_key(api_client):
    schema = api_client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Hexasubs bot API"
    assert api_client.get("/api/v1/docs").status_code == 302  # the page itself is for staff in the console
    wrong_key = Client(headers={"Authorization": "Bearer hxs_000000000000_wrong"})
    assert wrong_key.get("/api/v1/openapi.json").status_code == 302


def test_the_endpoints_are_grouped_by_tag(staff_client):
    paths = staff_client.get("/api/v1/openapi.json").json()["paths"]
    tags = {tuple(operation["tags"]) for path in paths.values() for operation in path.values()}
    assert tags == {("Subscribers",), ("Labels",), ("Label changes",), ("Bulk changes",), ("Segments",)}


def test_the_docs_descriptions_come_in_the_readers_language(staff_client):
    schema = staff_client.get("/api/v1/openapi.json", headers={"Accept-Language": "fr"}).json()
    assert schema["info"]["description"].startswith("Pour l\u2019exécution du bot")
    assert schema["paths"]["/api/v1/labels"]["post"]["summary"] == "Créer une étiquette"


def test_the_docs_load_swagger_from_our_origin_with_the_nonce(staff_client):
    docs = staff_client.get("/api/v1/docs")
    nonce = re.search(r"'nonce-([^']+)'", docs["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script ([^>]*)>", docs.text)
    assert scripts and all(f'nonce="{nonce}"' in script for script in scripts)
    assert "cdn" not in docs.text.lower()


def test_the_side_menu_links_the_docs_for_staff_only(operator, staff_client):
    client = Client()
    client.force_login(operator)
    assert "API docs" not in client.get(reverse("labels:list")).text
    assert "API docs" in staff_client.get(reverse("labels:list")).text
