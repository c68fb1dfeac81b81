import json

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from subscribers.actions import change_labels
from subscribers.filters import SubscriberFilter
from subscribers.forms import PER_PAGE_CHOICES, SubscriberLabelsForm, TableOptionsForm
from subscribers.models import Subscriber
from subscribers.queries import ReachablePaginator, count_subscribers, label_assignments, subscribers_for_table
from subscribers.tables import SubscriberTable

VIEW = "subscribers.view_subscriber"
CHANGE_LABELS = "subscribers.change_subscriber_labels"


@permission_required(VIEW, raise_exception=True)
def subscriber_list(request):
    # A function view rather than SingleTableMixin + FilterView: the table needs the
    # total from count_subscribers (exact or estimated) and page numbers clamped with a
    # message, which the mixins would hide behind several overridden methods.
    filters = SubscriberFilter(request.GET, queryset=subscribers_for_table())
    options = TableOptionsForm(request.GET)
    problems = filters.problems()
    table = SubscriberTable(
        filters.qs,
        order_by=_sort(request, problems),
        can_change_labels=request.user.has_perm(CHANGE_LABELS),
        back_url=request.get_full_path(),
    )
    total = count_subscribers(filters.qs, filtered=filters.is_filtered)
    per_page = options.rows_per_page
    page = options.page_number
    problems += [message for messages_ in options.errors.values() for message in messages_]
    last_page = ReachablePaginator.last_page(total, per_page)
    if page > last_page:
        problems.append(
            _("Page %(page)s is past the end: showing the last page, %(last)s.") % {"page": page, "last": last_page}
        )
        page = last_page
    table.paginate(ReachablePaginator, per_page=per_page, page=page, total=total)
    context = {
        "filters": filters,
        "table": table,
        "total": total,
        "problems": problems,
        "per_page": per_page,
        "per_page_choices": PER_PAGE_CHOICES,
        "page_range": table.paginator.get_elided_page_range(page, on_each_side=2, on_ends=1),
        "capped": not total.exact or total.value > table.paginator.count,
        "can_change_labels": request.user.has_perm(CHANGE_LABELS),
    }
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "subscribers/list.html#results" if partial else "subscribers/list.html", context)
    # The same URL answers a whole page or the table alone: caches must keep both apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _sort(request, problems):
    sort = request.GET.get("sort", "")
    allowed = {
        prefix + name
        for name, column in SubscriberTable.base_columns.items()
        if column.orderable is not False
        for prefix in ("", "-")
    }
    if not sort:
        return None
    if sort not in allowed:
        problems.append(_("The table cannot be sorted by “%(sort)s”: showing the newest first.") % {"sort": sort})
        return None
    return sort


@permission_required(VIEW, raise_exception=True)
def subscriber_row(request, pk):
    """One table row, reloaded in place after its labels changed."""
    subscriber = get_object_or_404(subscribers_for_table(), pk=pk)
    back_url = (request.htmx and request.htmx.current_url_abs_path) or reverse("subscribers:list")
    table = SubscriberTable([subscriber], can_change_labels=request.user.has_perm(CHANGE_LABELS), back_url=back_url)
    return render(request, "subscribers/list.html#row", {"row": next(iter(table.rows)), "table": table})


@permission_required(VIEW, raise_exception=True)
def subscriber_detail(request, pk):
    subscriber = get_object_or_404(Subscriber.objects.select_related("channel"), pk=pk)
    context = {
        "subscriber": subscriber,
        "assignments": label_assignments(subscriber),
        "can_change_labels": request.user.has_perm(CHANGE_LABELS),
        "back_url": request.get_full_path(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "subscribers/detail.html#labels", context)
    return render(request, "subscribers/detail.html", context)


@require_http_methods(["GET", "POST"])
def manage_labels(request, pk):
    """The "Manage labels" dialog: a Bootstrap modal loaded by htmx, a plain page without JavaScript."""
    if not request.htmx:
        template = "subscribers/labels.html"
    else:
        # Opening fills #modal-root with the whole dialog; a submit refills the dialog's content.
        template = "subscribers/labels.html#" + ("form" if request.method == "POST" else "dialog")
    context = {"back_url": _safe_back_url(request)}
    if not request.user.has_perm(CHANGE_LABELS):
        context["problem"] = _(
            "You may not change the labels of subscribers. Ask an administrator to add you to the Operators group."
        )
        return render(request, template, context, status=403)
    subscriber = Subscriber.objects.filter(pk=pk).first()
    if subscriber is None:
        context["problem"] = _("This subscriber no longer exists: it was deleted meanwhile. Nothing was saved.")
        return render(request, template, context, status=404)
    context["subscriber"] = subscriber

    if request.method == "GET":
        chosen = list(subscriber.labels.values_list("pk", flat=True))
        context["form"] = SubscriberLabelsForm(initial={"labels": chosen, "labels_before": chosen})
        return render(request, template, context)

    form = SubscriberLabelsForm(request.POST)
    if not form.is_valid():
        # Nothing was saved; the dialog shows the current labels with this operator's choices kept.
        context["form"] = form
        return render(request, template, context, status=422)
    add, remove = form.changes()
    change_labels(subscriber, add=add, remove=remove, by=request.user)
    text = _("Labels updated for %(name)s") % {"name": subscriber}
    if not request.htmx:
        messages.success(request, text)
        return redirect(context["back_url"])
    response = HttpResponse(status=204)
    response["HX-Trigger"] = json.dumps(
        {
            "showMessage": {"text": text, "level": "success"},
            "labelsSaved": {"id": subscriber.pk},
            f"subscriber-{subscriber.pk}-changed": True,
        }
    )
    return response


def _safe_back_url(request):
    back_url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(back_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return back_url
    return reverse("subscribers:list")
