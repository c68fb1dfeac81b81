from django.urls import path

from subscribers import views

app_name = "subscribers"
urlpatterns = [
    path("", views.subscriber_list, name="list"),
    path("<int:pk>/", views.subscriber_detail, name="detail"),
    path("<int:pk>/row/", views.subscriber_row, name="row"),
    path("<int:pk>/labels/", views.manage_labels, name="labels"),
    path("bulk-labels/", views.bulk_labels, name="bulk_labels"),
    path("bulk-labels/<int:pk>/", views.bulk_status, name="bulk_status"),
]
