from django.urls import path

from broadcasts import views

app_name = "broadcasts"
urlpatterns = [
    path("", views.broadcast_list, name="list"),
    path("new/", views.broadcast_add, name="add"),
    path("audience/", views.audience_count, name="audience"),
    path("live-chat/", views.console_messages, name="console"),
    path("subscribers/<int:pk>/", views.subscriber_broadcasts, name="subscriber"),
    path("<int:pk>/", views.broadcast_detail, name="detail"),
    path("<int:pk>/edit/", views.broadcast_edit, name="edit"),
    path("<int:pk>/delete/", views.broadcast_delete, name="delete"),
    path("<int:pk>/send/", views.broadcast_send, name="send"),
    path("<int:pk>/test/", views.broadcast_test, name="test"),
    path("<int:pk>/pause/", views.broadcast_pause, name="pause"),
    path("<int:pk>/resume/", views.broadcast_resume, name="resume"),
    path("<int:pk>/cancel/", views.broadcast_cancel, name="cancel"),
    path("<int:pk>/label/", views.broadcast_label, name="label"),
    path("<int:pk>/recipients.csv", views.broadcast_export, name="export"),
]
