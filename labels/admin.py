from django.contrib import admin, messages
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from labels.actions import create_label, delete_label, delete_label_group, save_label_group, update_label
from labels.forms import LabelForm, LabelGroupForm
from labels.models import Label, LabelGroup


@admin.register(LabelGroup)
class LabelGroupAdmin(admin.ModelAdmin):
    form = LabelGroupForm
    list_display = ["title", "name", "exclusive", "description", "updated_at"]
    list_filter = ["exclusive"]
    search_fields = ["title", "name"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # The same write as the Labels page's group dialogs: making it exclusive re-checks the conflicts.
        save_label_group(form)

    def delete_model(self, request, obj):
        # The same write as the Labels page's Delete group dialog: its labels stay, in no group.
        delete_label_group(obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            delete_label_group(group, by=request.user)


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    form = LabelForm
    list_display = ["title", "name", "group", "description", "subscriber_count", "created_at", "updated_at"]
    search_fields = ["title", "name"]
    list_filter = ["group", "color"]
    list_select_related = ["group"]
    readonly_fields = ["created_at", "updated_at"]

    class Media:
        # The colour as chips and the name generated while typing, as in the Labels page's dialog.
        css = {"all": ["css/chips.css"]}
        js = ["js/admin-label-name.js"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            form.base_fields["title"].widget.attrs["data-name-url"] = reverse("labels:name")
        return form

    def save_model(self, request, obj, form, change):
        # The same writes as the Labels page; a title taken meanwhile is refused by the database constraint.
        (update_label if change else create_label)(form)

    def delete_model(self, request, obj):
        taking_away = delete_label(obj, by=request.user)
        if taking_away is not None and not taking_away.is_finished:
            self.message_user(
                request,
                _("“%(title)s” is taken away from its subscribers in the background, then deleted.")
                % {"title": obj.title},
                messages.INFO,
            )

    def delete_queryset(self, request, queryset):
        for label in queryset:
            self.delete_model(request, label)

    def get_queryset(self, request):
        return super().get_queryset(request).with_subscriber_counts()

    @admin.display(description=_("subscribers"), ordering="subscriber_count")
    def subscriber_count(self, label):
        return label.subscriber_count
