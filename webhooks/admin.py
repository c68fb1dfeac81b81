from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event
from webhooks.tasks import deliver


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("events"), choices=Event.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = Endpoint
        fields = ["url", "description", "secret", "events", "is_active"]


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["url", "description", "event_list", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]

    @admin.display(description=_("events"))
    def event_list(self, endpoint):
        return ", ".join(endpoint.events)


@admin.action(description=_("Send the selected undelivered deliveries again now"))
def retry_deliveries(modeladmin, request, queryset):
    """Failed, cancelled and pending (even stuck) deliveries start again with a full set of attempts.

    One already being sent is not sent twice: the queued task finds it claimed and skips it.
    """
    undelivered = list(queryset.exclude(status=DeliveryStatus.SUCCEEDED).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=undelivered).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None)
    for pk in undelivered:
        deliver.enqueue(pk)
    skipped = queryset.count() - len(undelivered)
    message = ngettext("%(count)d delivery queued again.", "%(count)d deliveries queued again.", len(undelivered)) % {
        "count": len(undelivered)
    }
    if skipped:
        message += " " + ngettext(
            "%(count)d was delivered already and left alone.",
            "%(count)d were delivered already and left alone.",
            skipped,
        ) % {"count": skipped}
    modeladmin.message_user(request, message, messages.SUCCESS if undelivered else messages.WARNING)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "endpoint", "status", "attempts", "response_status", "next_attempt_at"]
    list_filter = ["status", "event", "endpoint"]
    list_select_related = ["endpoint"]
    readonly_fields = [
        "endpoint",
        "event",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "next_attempt_at",
        "attempt_started_at",
        "created_at",
        "delivered_at",
        "body",
    ]
    actions = [retry_deliveries]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
