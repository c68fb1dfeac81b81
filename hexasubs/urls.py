from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog, set_language

from hexasubs import views

admin.site.site_header = admin.site.site_title = "Hexasubs"
admin.site.index_title = _("Administration")
# The changelists get the whole width at 1280 px: the breadcrumbs and the index lead to the other models.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.login, name="login"),
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("language/", login_not_required(set_language), name="set_language"),
    # Pages name their icon; the admin's and browsers asking on their own get it here rather than a 404.
    path("favicon.ico", views.favicon, name="favicon"),
    path("language/catalog.js", login_not_required(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path("subscribers/", include("subscribers.urls")),
    path("labels/", include("labels.urls")),
    path("segments/", include("segments.urls")),
    path("broadcasts/", include("broadcasts.urls")),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]

handler403 = views.permission_denied
handler404 = views.page_not_found
