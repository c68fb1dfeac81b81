from django.urls import path

from api.views import api

# The API authenticates with keys, not sessions: LoginRequiredMiddleware must let its calls through, and the
# schema's too (api.docs checks staff or a key). The docs page keeps the console's login.
_patterns, _app_name, _namespace = api.urls
for _pattern in _patterns:
    if _pattern.name != "openapi-view":
        _pattern.callback.login_required = False

urlpatterns = [path("v1/", (_patterns, _app_name, _namespace))]
