from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext as _
from django_htmx.http import trigger_client_event


class HtmxMessagesMiddleware:
    """Django's messages reach htmx requests as toasts: `HX-Trigger: {"showMessages": {"messages": [...]}}`.

    Views say what happened with `messages.success(...)` whether htmx asked or not. A whole page shows the
    messages itself (base.html); a redirect keeps them for the page it leads to. static/js/app.js shows the
    toasts from the server-rendered <template id="toast-template">.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or 300 <= response.status_code < 400 or "HX-Redirect" in response:
            return response
        storage = messages.get_messages(request)
        if storage.used:  # a template has shown them
            return response
        pending = [{"text": str(message), "level": message.level_tag} for message in storage]
        if pending:
            trigger_client_event(response, "showMessages", {"messages": pending})
        return response


class BotApiMiddleware:
    """Bot API calls go straight to their view, sparing them the console's middleware.

    The bot runtime calls /api/v1/ on every message a person sends, with a key, never a session: it needs
    no session, CSRF check, user, messages, login redirect, htmx, lockout, clickjacking or CSP header.
    Placed right after SecurityMiddleware (whose headers and HTTPS redirect it keeps), it answers those
    calls itself: in the language of the request, as the console's LocaleMiddleware picks it, with an
    anonymous `request.user`. The docs page and the schema, read by staff signed in to the console, take
    the usual way. A bot's wrong address or method gets JSON too, never an HTML page or a login redirect.
    """

    PREFIX = "/api/v1/"
    # The docs and the schema (staff signed in), and the root (the console's 404 page).
    CONSOLE_VIEWS = {"openapi-view", "openapi-json", "api-root"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(self.PREFIX):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        if match is not None and (match.namespace != "api" or match.url_name in self.CONSOLE_VIEWS):
            return self.get_response(request)
        translation.activate(translation.get_language_from_request(request))
        request.LANGUAGE_CODE = translation.get_language()
        if match is None:
            return JsonResponse({"detail": _("Not found.")}, status=404)
        request.user = AnonymousUser()
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        if response.status_code == 405:  # django-ninja's own answer is a line of plain text
            allowed = response["Allow"]
            message = _("This address does not take %(method)s: use %(allowed)s.")
            response = JsonResponse({"detail": message % {"method": request.method, "allowed": allowed}}, status=405)
            response["Allow"] = allowed
        return response
