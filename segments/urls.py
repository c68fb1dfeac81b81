from django.urls import path

from segments import views

app_name = "segments"
urlpatterns = [
    path("", views.segment_list, name="list"),
    path("menu/", views.segment_menu, name="menu"),
    path("new/", views.segment_add, name="add"),
    path("<int:pk>/", views.segment_open, name="open"),
    path("<int:pk>/count/", views.segment_count, name="count"),
    path("<int:pk>/edit/", views.segment_edit, name="edit"),
    path("<int:pk>/update/", views.segment_update, name="update"),
    path("<int:pk>/delete/", views.segment_delete, name="delete"),
]
