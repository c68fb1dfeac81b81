"""The console's one dialog pattern (templates/dialog.html), for every app's views.

A dialog opens with htmx into #modal-root; forms inside it swap its content (#dialog-content); a successful
submit closes it with one event, `closeModal`, and says what happened through Django's messages, which
hexasubs.middleware turns into toasts. Without JavaScript the same views answer plain pages and redirects.
Invalid submissions answer 422, refusals 403 and vanished objects 404, each showing its explanation in the
dialog: htmx swaps those (the responseHandling in base.html).
"""

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import trigger_client_event

CONTENT = "dialog-content"


def render_dialog(request, content: str, context: dict, *, title: str, status: int = 200) -> HttpResponse:
    """`content` (a template partial) as the whole dialog, its content alone, or a page without JavaScript.

    Forms are submitted from inside an open dialog, so a POST answers the content alone.
    """
    context = {**context, "content": content, "dialog_title": title}
    if not request.htmx or request.htmx.history_restore_request:
        template = "dialog.html"
    elif request.method == "POST" or in_dialog(request):
        template = content
    else:
        template = "dialog.html#modal"
    return render(request, template, context, status=status)


def in_dialog(request) -> bool:
    """Whether htmx asked for the content of the open dialog."""
    return bool(request.htmx) and request.htmx.target == CONTENT


def close_dialog(request, next_url: str, *events: str) -> HttpResponse:
    """After a successful submit: close the dialog and send `events` to the page, or go back to `next_url`."""
    if not request.htmx:
        return redirect(next_url)
    response = HttpResponse(status=204)
    for event in ("closeModal", *events):
        trigger_client_event(response, event)
    return response
