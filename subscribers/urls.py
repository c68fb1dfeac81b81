from django.urls import path

from subscribers import views

app_name = "subscribers"
urlpatterns = [
    path("", views.subscriber_list, name="list"),
]
