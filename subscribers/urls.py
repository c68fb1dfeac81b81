from django.urls import path

from subscribers import views

app_name = "subscribers"
urlpatterns = [
    path("", views.subscriber_list, name="list"),
    path("<int:pk>/", views.subscriber_detail, name="detail"),
    path("<int:pk>/row/", views.subscriber_row, name="row"),
    path("<int:pk>/labels/", views.manage_labels, name="labels"),
    path("bulk-labels/", views.bulk_labels, name="bulk_labels"),
    path("bulk-changes/", views.operation_list, name="operations"),
    path("bulk-changes/<int:pk>/", views.operation_detail, name="operation"),
    path("bulk-changes/<int:pk>/cancel/", views.operation_cancel, name="operation_cancel"),
    path("bulk-changes/<int:pk>/undo/", views.operation_undo, name="operation_undo"),
]
