from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from labels.models import Label
from subscribers.actions import run_label_operation, start_label_operation
from subscribers.models import Channel, LabelChange, LabelOperation, LabelSource, Subscriber, SubscriberLabel


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


class PickLabelsForm(forms.Form):
    labels = forms.ModelMultipleChoiceField(
        queryset=Label.objects.order_by("title"),
        widget=forms.CheckboxSelectMultiple,
        label=_("Labels"),
        error_messages={"required": _("Pick at least one label.")},
    )


def _change_labels_of_selected(modeladmin, request, queryset, kind):
    """The intermediate page of the two label actions, then the change itself (as delete_selected does)."""
    form = PickLabelsForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        labels = list(form.cleaned_data["labels"])
        filters = {"admin_query": request.GET.urlencode(), "select_across": request.POST.get("select_across") == "1"}
        operation = start_label_operation(kind, labels, by=request.user, source=LabelSource.ADMIN, filters=filters)
        run_label_operation(operation, queryset)
        modeladmin.message_user(request, operation.summary(), messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": LabelOperation.Kind(kind).label,
        "kind": kind,
        "form": form,
        "opts": modeladmin.model._meta,
        "selected_count": queryset.count(),
        "action": request.POST["action"],
        "select_across": request.POST.get("select_across", "0"),
        "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/subscribers/subscriber/change_labels.html", context)


@admin.action(description=_("Add labels to selected subscribers"), permissions=["change_labels"])
def add_labels_to_selected(modeladmin, request, queryset):
    return _change_labels_of_selected(modeladmin, request, queryset, LabelOperation.Kind.ADD)


@admin.action(description=_("Remove labels from selected subscribers"), permissions=["change_labels"])
def remove_labels_from_selected(modeladmin, request, queryset):
    return _change_labels_of_selected(modeladmin, request, queryset, LabelOperation.Kind.REMOVE)


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
    actions = [add_labels_to_selected, remove_labels_from_selected]

    def has_change_labels_permission(self, request):
        return request.user.has_perm("subscribers.change_subscriber_labels")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("labels")

    @admin.display(description=_("labels"))
    def label_titles(self, subscriber):
        return ", ".join(label.title for label in subscriber.labels.all())


@admin.register(LabelOperation)
class LabelOperationAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "label_names",
        "source",
        "status",
        "selected_count",
        "changed_count",
        "created_by",
    ]
    list_filter = ["kind", "source", "status"]
    list_select_related = ["created_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LabelChange)
class LabelChangeAdmin(admin.ModelAdmin):
    list_display = ["changed_at", "subscriber", "label_name", "action", "source", "changed_by"]
    list_filter = ["action", "source"]
    list_select_related = ["subscriber", "changed_by"]
    search_fields = ["label_name", "=subscriber__foreign_id"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
