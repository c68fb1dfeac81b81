from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from labels.forms import LabelForm
from labels.models import Label


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    form = LabelForm
    list_display = ["title", "name", "description", "subscriber_count", "created_at", "updated_at"]
    search_fields = ["title", "name"]
    list_filter = ["color"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_subscriber_counts()

    @admin.display(description=_("subscribers"), ordering="subscriber_count")
    def subscriber_count(self, label):
        return label.subscriber_count
