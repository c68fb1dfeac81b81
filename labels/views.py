from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET
from django_filters.views import FilterView
from django_htmx.http import HttpResponseClientRedirect
from django_tables2 import SingleTableMixin

from hexasubs.dialogs import close_dialog, render_dialog
from labels.actions import create_label, delete_label, delete_label_group, save_label_group, update_label
from labels.filters import LabelFilter
from labels.forms import LabelForm, LabelGroupForm
from labels.models import Label, LabelGroup
from labels.tables import LabelTable

PAGE = "labels/list.html"


class LabelListView(PermissionRequiredMixin, SingleTableMixin, FilterView):
    permission_required = "labels.view_label"
    raise_exception = True
    table_class = LabelTable
    filterset_class = LabelFilter
    table_pagination = {"per_page": 50}
    template_name = PAGE

    def get_queryset(self):
        return Label.objects.select_related("group")

    def get_table_kwargs(self):
        user = self.request.user
        return {"can_change": user.has_perm("labels.change_label"), "can_delete": user.has_perm("labels.delete_label")}

    def get_table(self, **kwargs):
        table = super().get_table(**kwargs)
        if not self.request.GET.get("q"):
            if self.request.user.has_perm("labels.add_label"):
                table.empty_text = _("No labels yet. Use Add to create the first one.")
            else:
                table.empty_text = _("No labels yet.")
        return table

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["groups"] = list(LabelGroup.objects.all())
        chosen = self.request.GET.get("group", "")
        context["group"] = next((group for group in context["groups"] if group.name == chosen), None)
        return context

    def get_template_names(self):
        if self.request.htmx and self.request.htmx.target == "labels-table":
            return [f"{PAGE}#table"]
        return [PAGE]


label_list = LabelListView.as_view()


@permission_required("labels.add_label", raise_exception=True)
def label_add(request):
    data = None
    if request.method == "POST":
        data = request.POST.copy()
        # A name still as generated (not typed by the operator) follows the title as submitted,
        # even when the operator pressed Enter before the dialog had caught up with the typing.
        if data.get("name", "").strip() in ("", data.get("auto_name")):
            title = data.get("title", "").strip()
            data["name"] = data["auto_name"] = Label.objects.free_name(title) if title else ""
    form = LabelForm(data)
    if request.method == "POST" and form.is_valid() and (label := create_label(form)):
        return _done(request, _("Label “%(title)s” created.") % {"title": label.title})
    context = {"form": form, "auto_name": data.get("auto_name", "") if data else ""}
    return _dialog(request, "label_form", context, title=_("Add a label"))


@permission_required("labels.change_label", raise_exception=True)
def label_edit(request, pk):
    label = get_object_or_404(Label, pk=pk)
    stored_name = label.name
    if request.method == "POST" and "regenerate_name" in request.POST:
        # Only fills in the field: nothing is saved until the operator submits.
        data = request.POST.copy()
        if data.get("title", "").strip():
            data["name"] = Label.objects.free_name(data["title"], exclude_pk=label.pk)
        form = LabelForm(data, instance=label)
        return _dialog(request, "label_form", {"form": form, "stored_name": stored_name}, title=_("Edit a label"))
    form = LabelForm(request.POST or None, instance=label)
    if request.method == "POST" and form.is_valid() and (label := update_label(form)):
        return _done(request, _("Label “%(title)s” saved.") % {"title": label.title})
    return _dialog(request, "label_form", {"form": form, "stored_name": stored_name}, title=_("Edit a label"))


@permission_required("labels.add_labelgroup", raise_exception=True)
def group_add(request):
    form = LabelGroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and (group := save_label_group(form)):
        return _done(request, _("Label group “%(title)s” created.") % {"title": group.title})
    return _dialog(request, "group_form", {"form": form}, title=_("Add a label group"))


@permission_required("labels.change_labelgroup", raise_exception=True)
def group_edit(request, pk):
    group = get_object_or_404(LabelGroup, pk=pk)
    form = LabelGroupForm(request.POST or None, instance=group)
    if request.method == "POST" and form.is_valid() and (group := save_label_group(form)):
        return _done(request, _("Label group “%(title)s” saved.") % {"title": group.title})
    return _dialog(request, "group_form", {"form": form}, title=_("Edit a label group"))


@permission_required("labels.delete_labelgroup", raise_exception=True)
def group_delete(request, pk):
    group = get_object_or_404(LabelGroup, pk=pk)
    if request.method == "POST":
        count = delete_label_group(group, by=request.user)
        messages.success(
            request,
            ngettext(
                "Label group “%(title)s” deleted; its %(count)s label stays, in no group.",
                "Label group “%(title)s” deleted; its %(count)s labels stay, in no group.",
                count,
            )
            % {"title": group.title, "count": intcomma(count)}
            if count
            else _("Label group “%(title)s” deleted.") % {"title": group.title},
        )
        # The page was showing the group: it goes back to all labels (the toast survives the redirect).
        url = reverse("labels:list")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    count = group.labels.count()
    params = {"title": group.title, "count": intcomma(count)}
    if count:
        effect = (
            ngettext(
                "The %(count)s label of “%(title)s” stays, in no group.",
                "The %(count)s labels of “%(title)s” stay, in no group.",
                count,
            )
            % params
        )
    else:
        effect = _("“%(title)s” holds no label.") % params
    context = {"group": group, "question": _("Delete the group “%(title)s”?") % params, "effect": effect}
    return _dialog(request, "group_delete_form", context, title=_("Delete a label group"))


@permission_required("labels.delete_label", raise_exception=True)
def label_delete(request, pk):
    label = get_object_or_404(Label, pk=pk)
    if request.method == "POST":
        taking_away = delete_label(label, by=request.user)
        params = {"title": label.title}
        if taking_away is None:
            message = _("Label “%(title)s” deleted; no subscriber carried it.") % params
        elif taking_away.is_finished:
            lost = taking_away.changed_subscribers
            message = ngettext(
                "Label “%(title)s” deleted; %(count)s subscriber lost it.",
                "Label “%(title)s” deleted; %(count)s subscribers lost it.",
                lost,
            ) % {**params, "count": intcomma(lost)}
        else:
            message = ngettext(
                "“%(title)s” is being taken away from %(count)s subscriber in the background; "
                "it is deleted when that is done (see Bulk changes).",
                "“%(title)s” is being taken away from %(count)s subscribers in the background; "
                "it is deleted when that is done (see Bulk changes).",
                taking_away.total_count,
            ) % {**params, "count": intcomma(taking_away.total_count)}
        return _done(request, message)
    carriers = label.assignments.count()
    if carriers > settings.BULK_BACKGROUND_THRESHOLD:
        effect = ngettext(
            "%(count)s subscriber will lose this label. So many take a while: it is taken away from them in "
            "the background, with its progress under Bulk changes, and deleted when that is done.",
            "%(count)s subscribers will lose this label. So many take a while: it is taken away from them in "
            "the background, with its progress under Bulk changes, and deleted when that is done.",
            carriers,
        ) % {"count": intcomma(carriers)}
    elif carriers:
        effect = ngettext(
            "%(count)s subscriber will lose this label.", "%(count)s subscribers will lose this label.", carriers
        ) % {"count": intcomma(carriers)}
    else:
        effect = _("No subscriber carries it.")
    context = {"label": label, "question": _("Delete “%(title)s”?") % {"title": label.title}, "effect": effect}
    return _dialog(request, "delete_form", context, title=_("Delete a label"))


@require_GET
def label_name(request):
    """The dialog's Name field: generated from the title while the operator has not typed a name of their own."""
    if not (request.user.has_perm("labels.add_label") or request.user.has_perm("labels.change_label")):
        raise PermissionDenied
    pk = request.GET.get("label", "")
    label = get_object_or_404(Label, pk=pk) if pk.isdigit() else Label()
    data = request.GET.copy()
    auto_name = data.get("auto_name", "")
    if label.pk is None and data.get("name", "").strip() in ("", auto_name):
        title = data.get("title", "").strip()
        auto_name = data["name"] = Label.objects.free_name(title) if title else ""
    form = LabelForm(data, instance=label)
    if request.GET.get("format") == "json":  # the admin's label form (static/js/admin-label-name.js)
        return JsonResponse({"name": form["name"].value(), "auto_name": auto_name})
    return render(request, f"{PAGE}#name_field", {"form": form, "auto_name": auto_name, "stored_name": label.name})


def _dialog(request, form_partial, context, *, title):
    """A label dialog; a submitted form that did not save answers 422 with its errors."""
    form = context.get("form")
    status = 422 if form is not None and form.is_bound and form.errors else 200
    return render_dialog(request, f"{PAGE}#{form_partial}", context, title=title, status=status)


def _done(request, message):
    """After a successful change: close the dialog, refresh the table and say what happened."""
    messages.success(request, message)
    return close_dialog(request, reverse("labels:list"), "labelsChanged")
