from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from labels.exclusive import clash_message
from labels.models import Label
from subscribers.actions import ExclusiveClash, request_label_operation
from subscribers.filters import NOT_PROVIDED, search_by_name
from subscribers.models import Channel, LabelChange, LabelOperation, LabelSource, Subscriber, SubscriberLabel
from subscribers.queries import preview_label_change, subscribers_matching


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
    fields = ["assigned_label", "assigned_at", "assigned_by"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("label", "assigned_by")

    @admin.display(description=_("label"))  # the field itself has no translated name
    def assigned_label(self, assignment):
        return assignment.label


class PickLabelsForm(forms.Form):
    labels = forms.ModelMultipleChoiceField(
        queryset=Label.objects.order_by("title"),
        widget=forms.CheckboxSelectMultiple,
        label=_("Labels"),
        error_messages={"required": _("Pick at least one label.")},
    )


# The changelist's own parameters, as the Subscribers page's filter names them (see `_selection`).
ADMIN_TO_PAGE_FILTER = {"channel__id__exact": "channel", "gender__exact": "gender", "q": "q"}
ADMIN_DISPLAY_PARAMETERS = {"o", "p", "all", "_changelist_filters"}


def _selection(request, modeladmin) -> dict:
    """The admin's selection as the Subscribers page's filter, which a bulk operation stores and re-reads.

    Ticked rows are their ids. "Select all" means the changelist's filter: the
    channel and gender filters and the search, which this admin runs through the
    page's own search, so the operation selects exactly what the changelist showed.
    Raises ValueError on a parameter the page's filter has no equivalent for.
    """
    if request.POST.get("select_across") != "1":
        return {"filters": {}, "ids": sorted({int(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)})}
    filters = {}
    for name, values in request.GET.lists():
        if name in ADMIN_DISPLAY_PARAMETERS:
            continue
        if name not in ADMIN_TO_PAGE_FILTER:
            raise ValueError(name)
        if name == "channel__id__exact":
            values = list(Channel.objects.filter(pk__in=values).values_list("name", flat=True))
        elif name == "gender__exact":
            values = [value or NOT_PROVIDED for value in values]
        filters[ADMIN_TO_PAGE_FILTER[name]] = values
    return {"filters": filters}


def _change_labels_of_selected(modeladmin, request, queryset, kind):
    """Pick labels, confirm with what will change, then change (as delete_selected does), in chunks.

    Large selections run in the background like the Subscribers page's bulk changes.
    """
    try:
        selection = _selection(request, modeladmin)
    except ValueError as error:
        modeladmin.message_user(
            request,
            _("Labels cannot be changed in bulk with the filter “%(name)s”; select the rows, or filter differently.")
            % {"name": error},
            messages.ERROR,
        )
        return None
    form = PickLabelsForm(request.POST if "apply" in request.POST or "confirm" in request.POST else None)
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
    if form.is_valid():
        labels = list(form.cleaned_data["labels"])
        if "confirm" not in request.POST:
            preview = preview_label_change(subscribers_matching(selection), labels, kind)
            context.update(labels=labels, preview=preview)
            return TemplateResponse(request, "admin/subscribers/subscriber/change_labels.html", context)
        try:
            operation = request_label_operation(
                kind, labels, by=request.user, source=LabelSource.ADMIN, selection=selection
            )
        except ExclusiveClash as clash:
            titles = [[label.title for label in same] for same in clash.labels]
            modeladmin.message_user(request, clash_message(titles), messages.ERROR)
            return None
        if operation.is_finished:
            modeladmin.message_user(request, operation.summary(), messages.SUCCESS)
        else:
            modeladmin.message_user(
                request,
                format_html(
                    _("So many subscribers are selected that the change runs in the background: {}."),
                    format_html('<a href="{}">{}</a>', operation.get_absolute_url(), operation),
                ),
                messages.INFO,
            )
        return None
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
    # Searched by the Subscribers page's own search (get_search_results), so a bulk change on "all
    # matching" selects the same people; this list only makes the admin show its search box.
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

    def get_search_results(self, request, queryset, search_term):
        return search_by_name(queryset, search_term), False

    @admin.display(description=_("labels"))
    def label_titles(self, subscriber):
        return ", ".join(label.title for label in subscriber.labels.all())


@admin.register(LabelOperation)
class LabelOperationAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
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

    def has_delete_permission(self, request, obj=None):
        # Its members are what an undo reverses and what the history shows.
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
