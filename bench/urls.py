"""The project's URLs plus the baseline admin, for the benchmark only."""

from django.urls import path

from bench import admin_baseline
from hexasubs.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("baseline-admin/", admin_baseline.site.urls)]
