import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGES = ["subscribers:list", "labels:list"]


@pytest.mark.parametrize("page", PAGES)
def test_it_requires_login(client, page):
    response = client.get(reverse(page))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("page", PAGES)
def test_a_user_without_permission_gets_403(client, nobody, page):
    client.force_login(nobody)
    response = client.get(reverse(page))
    assert response.status_code == 403
    assert "Access denied" in response.text
    assert "Operators" in response.text


@pytest.mark.parametrize("page", PAGES)
def test_an_operator_sees_the_pages(client, operator, page):
    client.force_login(operator)
    assert client.get(reverse(page)).status_code == 200


def test_home_leads_to_the_subscribers(client, operator):
    client.force_login(operator)
    assert client.get("/").url == reverse("subscribers:list")


def test_the_side_menu_marks_the_current_page(client, operator):
    client.force_login(operator)
    html = client.get(reverse("labels:list")).text
    assert "Manage subscribers" in html
    assert f'class="nav-link active" aria-current="page" href="{reverse("labels:list")}"' in html
    assert reverse("admin:index") not in html


def test_staff_see_the_admin_link(client, admin_user):
    client.force_login(admin_user)
    assert reverse("admin:index") in client.get(reverse("subscribers:list")).text


def test_the_login_page_is_public_and_logs_in(client, operator):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "olivia", "password": "password"})
    assert response.url == reverse("home")


def test_a_wrong_password_says_so(client, operator):
    response = client.post(reverse("login"), {"username": "olivia", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text


def test_logout_is_a_post(client, operator):
    client.force_login(operator)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("subscribers:list")).status_code == 302


def test_pages_send_a_content_security_policy(client, operator):
    client.force_login(operator)
    policy = client.get(reverse("subscribers:list")).headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "unsafe-inline" not in policy


def test_every_page_names_its_icon_and_favicon_ico_leads_to_it_without_a_login(client, operator):
    assert client.get("/favicon.ico").headers["Location"] == "/static/img/favicon.svg"
    client.force_login(operator)
    assert 'rel="icon" href="/static/img/favicon.svg"' in client.get(reverse("subscribers:list")).text
