"""The project's URLs plus the two baseline admins, for the benchmark only."""

from django.urls import path

from bench import admin_baseline
from hexasubs.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("baseline-admin/", admin_baseline.site.urls),
    path("tuned-admin/", admin_baseline.tuned_site.urls),
]
