"""Who may read the bot API's docs and its OpenAPI schema (NinjaAPI's docs_decorator)."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from api.auth import ApiKeyAuth
from api.errors import BodyTooLarge, InvalidInput


def staff_or_api_key(view):
    """Staff read both in the console; others log in there first, and signed-in operators get 403.

    The schema also answers a valid API key, so that bot developers can generate clients from it.
    """

    @wraps(view)
    def checked(request, *args, **kwargs):
        user = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        if request.resolver_match.url_name == "openapi-json" and _has_api_key(request):
            return view(request, *args, **kwargs)
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied

    return checked


def _has_api_key(request) -> bool:
    """A valid key, checked at the API's front door; a request it turns away (a NUL in the query, a body too
    large) has no key here, as these views are outside the API and its error answers."""
    try:
        return bool(ApiKeyAuth()(request))
    except (BodyTooLarge, InvalidInput):
        return False
