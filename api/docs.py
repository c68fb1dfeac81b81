"""Who may read the bot API's docs and its OpenAPI schema (NinjaAPI's docs_decorator)."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from api.auth import ApiKeyAuth


def staff_or_api_key(view):
    """Staff read both in the console; others log in there first, and signed-in operators get 403.

    The schema also answers a valid API key, so that bot developers can generate clients from it.
    """

    @wraps(view)
    def checked(request, *args, **kwargs):
        user = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        if request.resolver_match.url_name == "openapi-json" and ApiKeyAuth()(request):
            return view(request, *args, **kwargs)
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied

    return checked
