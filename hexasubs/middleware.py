from django.contrib import messages
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
