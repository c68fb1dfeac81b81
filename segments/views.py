from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from hexasubs.dialogs import close_dialog, render_dialog
from segments.actions import SegmentInUse, delete_segment, save_segment, update_segment_filter, waiting_broadcasts
from segments.forms import SegmentForm, clean_filter_query
from segments.models import Segment, normalise_query
from segments.queries import describe, segment_subscribers
from subscribers.queries import count_subscribers
from subscribers.views import render_subscriber_list

VIEW = "segments.view_segment"
MANAGE = "segments.manage_segment"
VIEW_SUBSCRIBERS = "subscribers.view_subscriber"
# The side menu lists this many segments, then "All segments".
MENU_SEGMENTS = 5
# The table's own parameters: kept when a segment is opened, never part of its filter.
TABLE_OPTIONS = ("page", "per_page", "sort")


@require_GET
@permission_required(VIEW, raise_exception=True)
def segment_list(request):
    """Every segment: its filter in words, who saved it and when; counts load row by row (segment_count)."""
    segments = list(Segment.objects.select_related("created_by", "updated_by"))
    summaries = describe(segments)
    rows = [(segment, summaries[segment.pk]) for segment in segments]
    return render(request, "segments/list.html", {"rows": rows})


@require_GET
@permission_required(VIEW, raise_exception=True)
def segment_menu(request):
    """The first segments by name, for the side menu or the Subscribers page's picker (loaded by htmx)."""
    picker = request.GET.get("place") == "picker"
    segments = Segment.objects.only("pk", "name")
    if not picker:
        segments = segments[: MENU_SEGMENTS + 1]
    segments = list(segments)
    context = {"segments": segments[:MENU_SEGMENTS] if not picker else segments, "more": len(segments) > MENU_SEGMENTS}
    return render(request, "segments/list.html#picker" if picker else "segments/list.html#menu", context)


@require_GET
@permission_required(VIEW, raise_exception=True)
@permission_required(VIEW_SUBSCRIBERS, raise_exception=True)
def segment_open(request, pk):
    """The Subscribers page on a segment: its stored filter, its name as heading.

    Filters changed on the page come back here with `edit=1` and show the page's own
    filter, to save with "Update segment"; without `edit` the stored filter applies.
    """
    segment = get_object_or_404(Segment, pk=pk)
    if "edit" in request.GET:
        params = request.GET
    else:
        params = segment.params().copy()
        for name in TABLE_OPTIONS:
            if name in request.GET:
                params.setlist(name, request.GET.getlist(name))
    current = normalise_query(params)
    changed = current != segment.query
    # What "all matching", Export and "Broadcast to these" take: the filter shown, and the segment if unchanged.
    submitted = current if changed else "&".join(part for part in (current, f"segment={segment.pk}") if part)
    return render_subscriber_list(
        request,
        params,
        segment=segment,
        segment_changed=changed,
        submitted_filters=submitted,
        list_url=segment.get_absolute_url(),
    )


@require_GET
@permission_required(VIEW, raise_exception=True)
@permission_required(VIEW_SUBSCRIBERS, raise_exception=True)
def segment_count(request, pk):
    """How many subscribers the segment selects now: exact, or estimated when large (as the Subscribers page)."""
    segment = get_object_or_404(Segment, pk=pk)
    context = {"segment": segment}
    try:
        context["total"] = count_subscribers(segment_subscribers(segment), filtered=bool(segment.query))
    except ValueError as error:
        context["problem"] = str(error)
    return render(request, "segments/list.html#count", context)


@require_http_methods(["GET", "POST"])
@permission_required(MANAGE, raise_exception=True)
def segment_add(request):
    """ "Save as segment": the Subscribers page's filter (`filters`, a query string) under a name."""
    data = request.POST if request.method == "POST" else None
    form = SegmentForm(data, initial={"filters": request.GET.get("filters", "")})
    if data is not None and form.is_valid() and (segment := save_segment(form, by=request.user)):
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        # The segment's page: its name as heading, from where it can be refined and updated.
        return HttpResponseClientRedirect(segment.get_absolute_url()) if request.htmx else redirect(segment)
    context = {"form": form, "back_url": _back_url(request)}
    if data is None:
        try:
            clean_filter_query(form.initial["filters"])
        except ValidationError as error:
            context["filter_problem"] = " ".join(error.messages)
    return render_dialog(request, "segments/list.html#form", context, title=_("Save as segment"), status=_status(form))


@require_http_methods(["GET", "POST"])
@permission_required(MANAGE, raise_exception=True)
def segment_edit(request, pk):
    """Rename a segment, or change its description (its filter changes on its page: "Update segment")."""
    segment = Segment.objects.filter(pk=pk).first()
    if segment is None:
        return _gone(request)
    form = SegmentForm(request.POST if request.method == "POST" else None, instance=segment)
    if request.method == "POST" and form.is_valid() and save_segment(form, by=request.user):
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        return close_dialog(request, reverse("segments:list"), "segments-changed")
    context = {"form": form, "segment": segment, "back_url": _back_url(request)}
    return render_dialog(request, "segments/list.html#form", context, title=_("Rename segment"), status=_status(form))


@require_POST
@permission_required(MANAGE, raise_exception=True)
def segment_update(request, pk):
    """ "Update segment": the filter shown on the segment's page becomes its filter."""
    segment = get_object_or_404(Segment, pk=pk)
    try:
        query = clean_filter_query(request.POST.get("filters", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(segment)
    if update_segment_filter(segment, query, by=request.user):
        messages.success(request, _("Segment “%(name)s” updated.") % {"name": segment.name})
    else:
        messages.info(request, _("Segment “%(name)s” already has this filter.") % {"name": segment.name})
    return redirect(segment)


@require_http_methods(["GET", "POST"])
@permission_required(MANAGE, raise_exception=True)
def segment_delete(request, pk):
    """Delete a segment after confirmation; refused while a scheduled, sending or paused broadcast uses it."""
    segment = Segment.objects.filter(pk=pk).first()
    if segment is None:
        return _gone(request)
    context = {"segment": segment, "back_url": _back_url(request), "waiting": waiting_broadcasts(segment)}
    if request.method == "POST" and not context["waiting"]:
        try:
            delete_segment(segment)
        except SegmentInUse as refusal:
            context["waiting"] = refusal.broadcasts
        else:
            messages.success(request, _("Segment “%(name)s” deleted.") % {"name": segment.name})
            return close_dialog(request, reverse("segments:list"), "segments-changed")
    status = 422 if request.method == "POST" else 200
    return render_dialog(request, "segments/list.html#delete", context, title=_("Delete segment"), status=status)


def _gone(request):
    context = {"problem": _("This segment no longer exists: it was deleted meanwhile."), "back_url": _back_url(request)}
    return render_dialog(request, "segments/list.html#delete", context, title=_("Segments"), status=404)


def _status(form) -> int:
    return 422 if form.is_bound and form.errors else 200


def _back_url(request) -> str:
    back_url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(back_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return back_url
    return reverse("segments:list")
