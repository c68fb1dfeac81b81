from django.contrib import admin

from broadcasts import actions
from broadcasts.models import Broadcast, ConsoleMessage


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    """Read-only: broadcasts are written, sent and stopped on the Broadcasts page, through broadcasts.actions."""

    list_display = ["title", "status", "total_count", "sent_count", "failed_count", "created_by", "created_at"]
    list_filter = ["status", "message_tag"]
    search_fields = ["title"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("broadcasts.delete_broadcast") and (
            obj is None or obj.is_finished or obj.status == "draft"
        )

    def delete_model(self, request, obj):
        actions.delete_broadcast(obj)

    def delete_queryset(self, request, queryset):
        for broadcast in queryset:
            actions.delete_broadcast(broadcast)


@admin.register(ConsoleMessage)
class ConsoleMessageAdmin(admin.ModelAdmin):
    list_display = ["subscriber", "text", "broadcast", "is_test", "created_at"]
    list_select_related = ["subscriber", "broadcast"]
    list_filter = ["is_test"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
