from django.urls import path

from labels import views

app_name = "labels"
urlpatterns = [
    path("", views.label_list, name="list"),
    path("add/", views.label_add, name="add"),
    path("name/", views.label_name, name="name"),
    path("<int:pk>/edit/", views.label_edit, name="edit"),
    path("<int:pk>/delete/", views.label_delete, name="delete"),
    path("groups/add/", views.group_add, name="group_add"),
    path("groups/<int:pk>/edit/", views.group_edit, name="group_edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
]
