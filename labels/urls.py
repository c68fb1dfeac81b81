from django.urls import path

from labels import views

app_name = "labels"
urlpatterns = [
    path("", views.label_list, name="list"),
]
