from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from hexasubs.dialogs import close_dialog, render_dialog
from hexasubs.quotes import quoted
from subscribers.actions import (
    cancel_label_operation,
    change_labels,
    request_label_operation,
    set_opt_out,
    undo_label_operation,
)
from subscribers.filters import SubscriberFilter
from subscribers.forms import PER_PAGE_CHOICES, BulkLabelsForm, SubscriberLabelsForm, TableOptionsForm
from subscribers.models import LabelOperation, LabelSource, Subscriber
from subscribers.queries import (
    REACHABLE_ROWS,
    ReachablePaginator,
    count_subscribers,
    exclusive_losses,
    label_assignments,
    label_history,
    preview_label_change,
    recent_operations,
    subscribers_for_table,
    subscribers_matching,
)
from subscribers.tables import SubscriberTable

VIEW = "subscribers.view_subscriber"
# The detail page shows this many of the latest label changes; the admin's "Label changes" has them all.
HISTORY_ROWS = 50
# The Bulk changes page lists this many of the latest; the admin has them all.
OPERATIONS_SHOWN = 50
CHANGE_LABELS = "subscribers.change_subscriber_labels"


@permission_required(VIEW, raise_exception=True)
def subscriber_list(request):
    # A function view rather than SingleTableMixin + FilterView: the table needs the
    # total from count_subscribers (exact or estimated) and page numbers clamped with a
    # message, which the mixins would hide behind several overridden methods.
    return render_subscriber_list(request, request.GET)


def render_subscriber_list(request, params, **extra):
    """The Subscribers page, or its table alone for htmx, for `params` (the page's GET parameters).

    `extra` joins the context: segments.views shows a segment through this, with its
    stored filter as `params` and its name as the heading. The caller checks VIEW.
    """
    filters = SubscriberFilter(params, queryset=subscribers_for_table())
    options = TableOptionsForm(params)
    problems = filters.problems()
    total = count_subscribers(filters.qs, filtered=filters.is_filtered)
    table = SubscriberTable(
        filters.qs,
        order_by=_sort(params, problems),
        can_change_labels=request.user.has_perm(CHANGE_LABELS),
        back_url=request.get_full_path(),
        # At most REACHABLE_ROWS match: sorting them beats walking the sort's index past all the others.
        # (SQLite counts more than that exactly too: those are many enough to find walking the index.)
        sort_after_filtering=filters.is_filtered and total.exact and total.value <= REACHABLE_ROWS,
    )
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
        # The filter as submitted with this page: "all matching" applies to exactly this.
        "submitted_filters": _filter_query(params),
        "list_url": reverse("subscribers:list"),
        **extra,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "subscribers/list.html#results" if partial else "subscribers/list.html", context)
    # The same URL answers a whole page or the table alone: caches must keep both apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _filter_query(params) -> str:
    """The filter part of the table's query string: what "all matching" selects."""
    kept = params.copy()
    for name in ("page", "per_page", "sort"):
        kept.pop(name, None)
    return kept.urlencode()


def _sort(params, problems):
    sort = params.get("sort", "")
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
    return render(request, "subscribers/list.html#row", {"row": next(table.rows_html([subscriber])), "table": table})


@permission_required(VIEW, raise_exception=True)
def subscriber_detail(request, pk):
    subscriber = get_object_or_404(Subscriber.objects.select_related("channel"), pk=pk)
    context = {
        "subscriber": subscriber,
        "assignments": label_assignments(subscriber),
        "history": label_history(subscriber, HISTORY_ROWS),
        "can_change_labels": request.user.has_perm(CHANGE_LABELS),
        "back_url": request.get_full_path(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "subscribers/detail.html#labels", context)
    return render(request, "subscribers/detail.html", context)


@require_POST
@permission_required("subscribers.change_subscriber_opt_out", raise_exception=True)
def subscriber_opt_out(request, pk):
    """Opt a subscriber out of promotional messages (`opted_out=1`), or back in (`opted_out=0`)."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    opted_out = request.POST.get("opted_out") == "1"
    if set_opt_out(subscriber, opted_out):
        if opted_out:
            messages.success(request, _("%(name)s will get no more promotional messages.") % {"name": subscriber})
        else:
            messages.success(request, _("%(name)s gets promotional messages again.") % {"name": subscriber})
    return redirect("subscribers:detail", pk=subscriber.pk)


@require_http_methods(["GET", "POST"])
def manage_labels(request, pk):
    """The guide's "Manage labels" dialog (hexasubs.dialogs): a modal with htmx, a plain page without JavaScript."""
    context = {"back_url": _safe_back_url(request)}
    if not request.user.has_perm(CHANGE_LABELS):
        context["problem"] = _(
            "You may not change the labels of subscribers. Ask an administrator to add you to the Operators group."
        )
        return _labels_dialog(request, context, status=403)
    subscriber = Subscriber.objects.filter(pk=pk).first()
    if subscriber is None:
        context["problem"] = _("This subscriber no longer exists: it was deleted meanwhile. Nothing was saved.")
        return _labels_dialog(request, context, status=404)
    context["subscriber"] = subscriber

    if request.method == "GET":
        chosen = list(subscriber.labels.values_list("pk", flat=True))
        context["form"] = SubscriberLabelsForm(initial={"labels": chosen, "labels_before": chosen})
        return _labels_dialog(request, context)

    form = SubscriberLabelsForm(request.POST)
    if not form.is_valid():
        # Nothing was saved; the dialog shows the current labels with this operator's choices kept.
        context["form"] = form
        return _labels_dialog(request, context, status=422)
    add, remove = form.changes()
    change_labels(subscriber, add=add, remove=remove, by=request.user)
    messages.success(request, _("Labels updated for %(name)s") % {"name": subscriber})
    return close_dialog(request, context["back_url"], f"subscriber-{subscriber.pk}-changed")


def _labels_dialog(request, context, status=200):
    return render_dialog(request, "subscribers/labels.html#form", context, title=_("Manage labels"), status=status)


def _safe_back_url(request):
    back_url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(back_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return back_url
    return reverse("subscribers:list")


@require_http_methods(["GET", "POST"])
@permission_required(CHANGE_LABELS, raise_exception=True)
def bulk_labels(request):
    """Add or remove labels on the selected subscribers: pick labels, confirm, then change.

    A Bootstrap dialog loaded by htmx, or plain pages without JavaScript. The
    selection (ticked rows, or all matching the filter as submitted) travels in
    hidden fields through every step, so the confirmation counts and the change
    applies to the very same subscribers.
    """
    picking = request.method == "GET"
    form = BulkLabelsForm(request.POST if request.method == "POST" else request.GET, picking=picking)
    context = {"form": form, "back_url": _safe_back_url(request), "step": "pick"}
    if not form.is_valid():
        if "labels" not in form.errors or len(form.errors) > 1:
            context["step"] = "problem"
        return _render_bulk(request, context, status=422)
    if picking:
        return _render_bulk(request, context)

    kind, labels, selection = form.cleaned_data["kind"], list(form.cleaned_data["labels"]), form.selection()
    if "confirm" not in request.POST:
        preview = preview_label_change(subscribers_matching(selection), labels, kind)
        context.update(step="confirm", labels=labels, preview=preview)
        if kind == LabelOperation.Kind.ADD:  # "… and 1,234 of them lose “Plan: free”" (exclusive groups)
            losses = exclusive_losses(subscribers_matching(selection), labels)
            context["losses"] = [(quoted([title]), lost) for title, lost in losses]
        return _render_bulk(request, context)

    operation = request_label_operation(kind, labels, by=request.user, source=LabelSource.BULK, selection=selection)
    if not operation.is_finished:
        if not request.htmx:
            return redirect(f"{operation.get_absolute_url()}?{urlencode({'next': context['back_url']})}")
        context.update(step="progress", operation=operation)
        return _render_bulk(request, context, status=202)
    return _operation_done(request, operation, context["back_url"])


@permission_required(VIEW, raise_exception=True)
def operation_list(request):
    """Recent bulk label changes: status, who, what, counts, duration, with cancel and undo."""
    operations = recent_operations()[:OPERATIONS_SHOWN]
    context = {"operations": operations, "can_change_labels": request.user.has_perm(CHANGE_LABELS)}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "subscribers/operations.html#list", context)
    return render(request, "subscribers/operations.html", context)


@permission_required(VIEW, raise_exception=True)
def operation_detail(request, pk):
    """One bulk change and how far it got: a page, or the status block the dialog and the list poll."""
    operation = get_object_or_404(recent_operations(), pk=pk)
    context = {
        "operation": operation,
        "back_url": _safe_back_url(request),
        "can_change_labels": request.user.has_perm(CHANGE_LABELS),
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "subscribers/operations.html#status", context)
        if operation.is_finished:  # the last poll: say how it ended, refresh what shows subscribers
            if operation.status != LabelOperation.Status.FAILED:  # a failure is said in the block itself
                messages.success(request, operation.summary())
            trigger_client_event(response, "subscribers-changed")
        return response
    return render(request, "subscribers/operation.html", context)


@require_POST
@permission_required(CHANGE_LABELS, raise_exception=True)
def operation_cancel(request, pk):
    operation = get_object_or_404(LabelOperation, pk=pk)
    if cancel_label_operation(operation, by=request.user):
        text, level = _("Bulk change #%(number)s cancelled.") % {"number": operation.pk}, "success"
    else:
        text, level = _("Bulk change #%(number)s had already finished.") % {"number": operation.pk}, "warning"
    return _after_operation_change(request, text, level, get_object_or_404(recent_operations(), pk=pk))


@require_POST
@permission_required(CHANGE_LABELS, raise_exception=True)
def operation_undo(request, pk):
    operation = get_object_or_404(recent_operations(), pk=pk)
    try:
        undo = undo_label_operation(operation, by=request.user)
    except ValueError:
        text = _("Bulk change #%(number)s cannot be undone: it was undone already, or changed nothing.") % {
            "number": operation.pk
        }
        return _after_operation_change(request, text, "warning", operation)
    if undo.is_finished:
        text = _("Undone: %(summary)s") % {"summary": undo.summary()}
    else:
        text = _("Undoing bulk change #%(number)s in the background as #%(undo)s.") % {
            "number": operation.pk,
            "undo": undo.pk,
        }
    undo = get_object_or_404(recent_operations(), pk=undo.pk)
    if request.htmx and urlsplit(request.htmx.current_url or "").path == operation.get_absolute_url():
        # On the undone change's own page, whose heading names it: go to the undo's page, as without JavaScript.
        messages.success(request, text)
        return HttpResponseClientRedirect(undo.get_absolute_url())
    return _after_operation_change(request, text, "success", undo)


def _after_operation_change(request, text, level, operation):
    """Cancel and undo answer with the operation's status block (htmx), or a message and its page."""
    getattr(messages, level)(request, text)
    if not request.htmx:
        return redirect(operation.get_absolute_url())
    context = {"operation": operation, "back_url": _safe_back_url(request), "can_change_labels": True}
    response = render(request, "subscribers/operations.html#status", context)
    return trigger_client_event(response, "subscribers-changed")


def _render_bulk(request, context, status=200):
    """The bulk label dialog's step (hexasubs.dialogs), titled after what it does."""
    operation = context.get("operation")
    kind = operation.kind if operation else context["form"]["kind"].value()
    title = _("Remove labels") if kind == LabelOperation.Kind.REMOVE else _("Add labels")
    return render_dialog(request, "subscribers/bulk_labels.html#content", context, title=title, status=status)


def _operation_done(request, operation, back_url):
    messages.success(request, operation.summary())
    return close_dialog(request, back_url, "subscribers-changed")
