from django.contrib import admin
from django.urls import include, path

from hexasubs import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("subscribers/", include("subscribers.urls")),
    path("labels/", include("labels.urls")),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]
