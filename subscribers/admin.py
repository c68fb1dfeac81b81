from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from subscribers.models import Channel, Subscriber, SubscriberLabel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["title", "name", "kind", "is_active", "created_at", "updated_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["title", "name"]
    prepopulated_fields = {"name": ["title"]}
    readonly_fields = ["created_at", "updated_at"]


class SubscriberLabelInline(admin.TabularInline):
    """Shows who assigned each label and when; changes go through the label actions."""

    model = SubscriberLabel
    fields = ["label", "assigned_at", "assigned_by"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("label", "assigned_by")


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["__str__", "channel", "gender", "locale", "label_titles", "created_at", "updated_at"]
    list_filter = ["channel", "gender"]
    list_select_related = ["channel"]
    search_fields = ["first_name", "last_name", "=foreign_id"]
    # A full COUNT(*) on every page view is what makes a big changelist slow.
    show_full_result_count = False
    readonly_fields = ["created_at", "updated_at", "last_seen_at"]
    inlines = [SubscriberLabelInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("labels")

    @admin.display(description=_("labels"))
    def label_titles(self, subscriber):
        return ", ".join(label.title for label in subscriber.labels.all())
