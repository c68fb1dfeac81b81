from django.urls import path

from api.views import api

# The API authenticates with keys, not sessions: LoginRequiredMiddleware must let its calls through.
# The docs and the schema keep the login requirement and add a staff check (docs_decorator).
_patterns, _app_name, _namespace = api.urls
for _pattern in _patterns:
    if _pattern.name not in {"openapi-json", "openapi-view"}:
        _pattern.callback.login_required = False

urlpatterns = [path("v1/", (_patterns, _app_name, _namespace))]
