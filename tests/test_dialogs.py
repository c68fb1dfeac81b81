"""The console's one dialog system (hexasubs/dialogs.py, templates/dialog.html, static/js/app.js): one modal,
one close event, toasts sent by the server, htmx's responseHandling instead of status handling in JavaScript."""

import json
import re
from pathlib import Path

import pytest
from django.contrib import messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from hexasubs.middleware import HtmxMessagesMiddleware

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
HTMX = {"HX-Request": "true"}


def _triggers(response):
    return json.loads(response["HX-Trigger"])


def test_a_dialog_opens_as_a_modal_and_later_steps_swap_its_content(client, label_manager):
    client.force_login(label_manager)
    opened = client.get(reverse("labels:add"), headers=HTMX).text
    assert opened.lstrip().startswith('<div class="modal fade" id="dialog"')
    assert 'id="dialog-content" hx-target="this" hx-swap="innerHTML"' in opened
    assert '<h2 class="modal-title fs-5" id="dialog-title">Add a label</h2>' in opened
    invalid = client.post(reverse("labels:add"), {"title": ""}, headers=HTMX)
    assert invalid.status_code == 422  # every dialog answers an invalid form with 422
    assert 'id="dialog"' not in invalid.text and "<form" in invalid.text


def test_without_javascript_a_dialog_is_a_page(client, label_manager):
    client.force_login(label_manager)
    page = client.get(reverse("labels:add")).text
    assert "<html" in page and '<div class="modal position-static d-block dialog-page">' in page
    assert '<h1 class="modal-title fs-5" id="dialog-title">Add a label</h1>' in page


def test_a_successful_submit_closes_the_dialog_with_one_event_and_a_toast(client, label_manager):
    client.force_login(label_manager)
    response = client.post(reverse("labels:add"), {"title": "VIP"}, headers=HTMX)
    assert response.status_code == 204
    assert _triggers(response) == {
        "closeModal": {},
        "labelsChanged": {},
        "showMessages": {"messages": [{"text": "Label “VIP” created.", "level": "success"}]},
    }


def test_messages_reach_htmx_answers_and_whole_pages_show_their_own():
    def view(request):
        messages.warning(request, "Careful")
        return HttpResponse("fragment")

    request = RequestFactory().get("/", headers=HTMX)
    request.htmx = True
    request.session = {}
    request._messages = FallbackStorage(request)
    response = HtmxMessagesMiddleware(view)(request)
    assert _triggers(response) == {"showMessages": {"messages": [{"text": "Careful", "level": "warning"}]}}

    request = RequestFactory().get("/")
    request.htmx = False
    request.session = {}
    request._messages = FallbackStorage(request)
    assert "HX-Trigger" not in HtmxMessagesMiddleware(view)(request)


def test_an_error_message_is_a_danger_toast(client, operator):
    client.force_login(operator)
    page = client.get(reverse("subscribers:list"))
    assert '<template id="toast-template">' in page.text
    assert 'data-failure-text="The server could not do that.' in page.text


def test_a_row_that_vanished_explains_itself_in_a_dialog_not_in_the_table(client, operator):
    client.force_login(operator)
    response = client.get(reverse("subscribers:row", args=[999_999]), headers={**HTMX, "HX-Target": "subscriber-1"})
    assert response.status_code == 404
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#modal-root", "innerHTML")
    assert 'class="modal fade" id="dialog"' in response.text and "Page not found" in response.text
    assert "<html" not in response.text


def test_a_refusal_inside_a_dialog_replaces_its_content(client, operator, make_label):
    client.force_login(operator)
    label = make_label("VIP")
    response = client.get(reverse("labels:edit", args=[label.pk]), headers={**HTMX, "HX-Target": "dialog-content"})
    assert response.status_code == 403
    assert "HX-Retarget" not in response and 'id="dialog"' not in response.text
    assert "Access denied" in response.text


def test_htmx_swaps_refusals_and_invalid_forms_by_its_own_response_handling(client, operator):
    client.force_login(operator)
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", client.get(reverse("labels:list")).text)
    config = json.loads(meta.group(1))
    assert config["responseHandling"][0] == {"code": "204", "swap": False}
    assert {"code": "40[34]|422", "swap": True} in config["responseHandling"]


def test_one_dialog_controller_one_close_event_and_no_strings_in_javascript():
    scripts = {path.name: path.read_text() for path in (ROOT / "static" / "js").glob("*.js")}
    code = "\n".join(scripts.values())
    assert code.count("bootstrap.Modal.getOrCreateInstance(modal).show()") == 1
    assert "closeModal" in code and "labelsSaved" not in code and 'showMessage"' not in code
    # Which statuses swap is htmx's responseHandling, in base.html: no script decides it (app.js's beforeSwap
    # listener only notes where the keyboard was).
    assert "shouldSwap" not in code and "isError" not in code
    # Words shown to people come from the server or the JavaScript catalog, in the operator's language:
    # no sentence is written in the scripts.
    assert {
        name: re.findall(r"[\"'`]([A-Z][a-z]+ [a-z]+[^\"'`]*)[\"'`]", script) for name, script in scripts.items()
    } == {name: [] for name in scripts}
