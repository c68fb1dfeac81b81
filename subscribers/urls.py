from django.urls import path

from subscribers import import_views, views

app_name = "subscribers"
urlpatterns = [
    path("", views.subscriber_list, name="list"),
    path("<int:pk>/", views.subscriber_detail, name="detail"),
    path("<int:pk>/row/", views.subscriber_row, name="row"),
    path("<int:pk>/labels/", views.manage_labels, name="labels"),
    path("<int:pk>/opt-out/", views.subscriber_opt_out, name="opt_out"),
    path("bulk-labels/", views.bulk_labels, name="bulk_labels"),
    path("bulk-changes/", views.operation_list, name="operations"),
    path("bulk-changes/<int:pk>/", views.operation_detail, name="operation"),
    path("bulk-changes/<int:pk>/cancel/", views.operation_cancel, name="operation_cancel"),
    path("bulk-changes/<int:pk>/undo/", views.operation_undo, name="operation_undo"),
    path("import/", import_views.import_page, name="import"),
    path("import/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("import/<int:pk>/cancel/", import_views.import_cancel, name="import_cancel"),
    path("import/<int:pk>/rejected.csv", import_views.import_rejects, name="import_rejects"),
    path("export/", import_views.export_dialog, name="export"),
    path("export/download/", import_views.export_download, name="export_download"),
]
