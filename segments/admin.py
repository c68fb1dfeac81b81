from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext as _

from segments.actions import SegmentInUse, delete_segment, save_segment
from segments.forms import SegmentForm, clean_filter_query
from segments.models import Segment


class SegmentAdminForm(forms.ModelForm):
    """The Save as segment form's checks, with the stored filter typed as a query string and checked the same
    way as the Subscribers page's (segments.forms)."""

    class Meta(SegmentForm.Meta):
        fields = ["name", "description", "query"]

    clean_name = SegmentForm.clean_name

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["query"].help_text = _(
            "The Subscribers page's filter as it appears in its address after the “?”, for example label=vip."
        )

    def clean_query(self):
        return clean_filter_query(self.cleaned_data["query"])


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ["name", "description", "query", "created_by", "updated_at"]
    list_select_related = ["created_by"]
    search_fields = ["name"]
    readonly_fields = ["created_by", "created_at", "updated_by", "updated_at"]

    # Segments have one permission for every change (segments.manage_segment), as on the Segments page.
    def has_add_permission(self, request):
        return request.user.has_perm("segments.manage_segment")

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("segments.manage_segment")

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("segments.manage_segment")

    def save_model(self, request, obj, form, change):
        # The same write as the Subscribers page's Save as segment and the Segments page's Rename.
        save_segment(form, by=request.user)

    def delete_model(self, request, obj):
        self.delete_queryset(request, [obj])

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            try:
                delete_segment(segment)
            except SegmentInUse as refusal:
                messages.error(
                    request,
                    _("“%(name)s” is not deleted: broadcasts that have not finished use it (%(broadcasts)s).")
                    % {"name": segment.name, "broadcasts": refusal},
                )
