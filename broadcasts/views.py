import csv

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_POST
from django_filters.views import FilterView
from django_tables2 import LazyPaginator, RequestConfig, SingleTableMixin

from broadcasts import actions, queries
from broadcasts.filters import BroadcastFilter, DeliveryFilter
from broadcasts.forms import (
    BroadcastForm,
    LabelRecipientsForm,
    SendForm,
    TestSendForm,
    audience_filter,
    audience_selection,
    variant_formset,
)
from broadcasts.messages import message_for, variant_for
from broadcasts.models import Broadcast, ConsoleMessage
from broadcasts.tables import BroadcastTable, DeliveryTable
from hexasubs.csvcells import neutralise
from subscribers.models import Subscriber

VIEW = "broadcasts.view_broadcast"
ADD = "broadcasts.add_broadcast"
CHANGE = "broadcasts.change_broadcast"
SEND = "broadcasts.send_broadcast"
CHANGE_LABELS = "subscribers.change_subscriber_labels"
RECIPIENTS_PER_PAGE = 50
HISTORY_ROWS = 50
CONSOLE_MESSAGES_SHOWN = 100


class BroadcastListView(PermissionRequiredMixin, SingleTableMixin, FilterView):
    permission_required = VIEW
    raise_exception = True
    table_class = BroadcastTable
    filterset_class = BroadcastFilter
    table_pagination = {"per_page": 25}
    template_name = "broadcasts/list.html"

    def get_queryset(self):
        return queries.recent_broadcasts()


broadcast_list = BroadcastListView.as_view()


def _compose(request, broadcast: Broadcast | None):
    """The compose page, for a new draft or an existing one; with the audience's counts when asked."""
    data = request.POST if request.method == "POST" else None
    if data is None and broadcast is None:
        data_for_audience = request.GET.copy()
        form = BroadcastForm(initial={"title": "", "text": "", "segment": request.GET.get("segment", "")})
        form.audience = audience_filter(data_for_audience)
    else:
        form = BroadcastForm(data, instance=broadcast)
    variants = variant_formset(data, broadcast)
    counting = request.method == "POST" and "count" in request.POST
    if request.method == "POST" and not counting and form.is_valid() and variants.is_valid():
        form.instance.variants = variants.variants()
        saved = actions.save_broadcast(form, by=request.user)
        messages.success(request, _("Draft “%(title)s” saved.") % {"title": saved.title})
        return redirect(saved)
    context = {"form": form, "variants": variants, "broadcast": broadcast, "audience": _count(form, request)}
    status = 422 if request.method == "POST" and not counting else 200
    return render(request, "broadcasts/form.html", context, status=status)


def _count(form: BroadcastForm, request):
    filterset = form.audience
    if filterset.problems():
        return None
    promotional = not (form["message_tag"].value() or "")
    hours = _hours(form["last_interaction_hours"].value())
    return queries.count_audience(audience_selection(filterset), hours, promotional=promotional)


def _hours(value):
    try:
        hours = int(value)
    except (TypeError, ValueError):
        return None
    return hours if 1 <= hours <= 8760 else None


@permission_required(ADD, raise_exception=True)
def broadcast_add(request):
    return _compose(request, None)


@permission_required(CHANGE, raise_exception=True)
def broadcast_edit(request, pk):
    broadcast = get_object_or_404(Broadcast, pk=pk)
    if broadcast.status != Broadcast.Status.DRAFT:
        messages.warning(request, _("Only drafts can be edited: this broadcast has been sent or scheduled."))
        return redirect(broadcast)
    return _compose(request, broadcast)


@require_POST
@permission_required("broadcasts.delete_broadcast", raise_exception=True)
def broadcast_delete(request, pk):
    broadcast = get_object_or_404(Broadcast, pk=pk)
    if actions.delete_draft(broadcast):
        messages.success(request, _("Draft “%(title)s” deleted.") % {"title": broadcast.title})
        return redirect("broadcasts:list")
    messages.warning(request, _("Only drafts can be deleted."))
    return redirect(broadcast)


@require_GET
@permission_required(ADD, raise_exception=True)
def audience_count(request):
    """The compose page's live count: how many the filters select, split by what will happen to them."""
    form = BroadcastForm(initial={})
    form.audience = audience_filter(request.GET.copy())
    context = {"problems": form.audience.problems(), "audience": None}
    if not context["problems"]:
        promotional = not request.GET.get("message_tag")
        hours = _hours(request.GET.get("last_interaction_hours"))
        context["audience"] = queries.count_audience(audience_selection(form.audience), hours, promotional=promotional)
    return render(request, "broadcasts/form.html#audience_count", context)


@permission_required(VIEW, raise_exception=True)
def broadcast_detail(request, pk):
    """A broadcast: its message and audience while a draft, its progress while sending, then its report."""
    broadcast = get_object_or_404(Broadcast.objects.select_related("created_by", "stopped_by"), pk=pk)
    if request.htmx and request.htmx.target == "broadcast-progress":
        response = render(request, "broadcasts/detail.html#progress", _progress_context(request, broadcast))
        if broadcast.is_finished or broadcast.status == Broadcast.Status.PAUSED:
            response["HX-Refresh"] = "true"  # the whole page changes: report, buttons
        return response
    return _detail_page(request, broadcast)


def _detail_page(request, broadcast, status=200, **forms):
    """The broadcast's page; with the bound form a POST did not act on, its errors shown and its input kept."""
    context = _progress_context(request, broadcast)
    context.update(
        send_form=SendForm(),
        test_form=TestSendForm(),
        label_form=LabelRecipientsForm(),
        can_send=request.user.has_perm(SEND),
        can_change=request.user.has_perm(CHANGE),
        can_label=request.user.has_perm(CHANGE_LABELS),
    )
    context.update(forms)
    if broadcast.status == Broadcast.Status.DRAFT:
        try:
            context["audience"] = queries.count_audience(
                broadcast.audience, broadcast.last_interaction_hours, promotional=broadcast.is_promotional
            )
        except ValueError as error:
            context["audience_problem"] = str(error)
        context["preview"] = _preview(broadcast, request.GET.get("preview"), context.get("audience"))
    if broadcast.is_frozen:
        context.update(_report_context(request, broadcast))
    if request.htmx and request.htmx.target == "recipients":
        return render(request, "broadcasts/detail.html#recipients", context)
    return render(request, "broadcasts/detail.html", context, status=status)


def _progress_context(request, broadcast):
    context = {"broadcast": broadcast}
    # Messages tried so far (those skipped when the audience was frozen cost no time).
    tried = broadcast.sent_count + broadcast.failed_count + broadcast.unknown_count
    if broadcast.status == Broadcast.Status.SENDING and broadcast.started_at and tried:
        elapsed = (timezone.now() - broadcast.started_at).total_seconds()
        rate = tried / elapsed if elapsed > 0 else 0
        if rate > 0:
            context["rate"] = rate
            context["eta_seconds"] = int(broadcast.queued_count / rate)
    return context


def _preview(broadcast: Broadcast, subscriber_id, audience):
    """The message as one subscriber of the audience gets it (the one asked for, else the first sample)."""
    subscriber = None
    if subscriber_id and str(subscriber_id).isdigit():
        subscriber = Subscriber.objects.select_related("channel").filter(pk=subscriber_id).first()
    if subscriber is None and audience and audience.samples:
        subscriber = audience.samples[0]
    if subscriber is None:
        return None
    locale, _text = variant_for(subscriber.locale, broadcast.text, broadcast.variants)
    return {"subscriber": subscriber, "text": message_for(broadcast, subscriber), "variant": locale}


def _report_context(request, broadcast):
    filters = DeliveryFilter(request.GET, queryset=queries.deliveries_for_report(broadcast))
    table = DeliveryTable(filters.qs)
    RequestConfig(request, paginate={"per_page": RECIPIENTS_PER_PAGE, "paginator_class": LazyPaginator}).configure(
        table
    )
    return {"report": queries.report_lines(broadcast), "recipients_filter": filters, "recipients": table}


@require_POST
@permission_required(SEND, raise_exception=True)
def broadcast_send(request, pk):
    broadcast = get_object_or_404(Broadcast, pk=pk)
    form = SendForm(request.POST)
    if not form.is_valid():
        if broadcast.status == Broadcast.Status.DRAFT:
            return _detail_page(request, broadcast, status=422, send_form=form)
        # A page left open while someone else sent it: its form is gone from the page.
        messages.warning(request, _("This broadcast has already been sent or scheduled."))
        return redirect(broadcast)
    at = form.cleaned_data["at"]
    if not actions.start_broadcast(broadcast, by=request.user, at=at, timezone_name=form.cleaned_data["time_zone"]):
        messages.warning(request, _("This broadcast has already been sent or scheduled."))
    elif at is None:
        messages.success(request, _("Sending “%(title)s”.") % {"title": broadcast.title})
    else:
        messages.success(request, _("“%(title)s” is scheduled.") % {"title": broadcast.title})
    return redirect(broadcast)


def _control(action, done, not_done):
    @require_POST
    @permission_required(SEND, raise_exception=True)
    def view(request, pk):
        broadcast = get_object_or_404(Broadcast, pk=pk)
        if action(broadcast, by=request.user):
            messages.success(request, str(done) % {"title": broadcast.title})
        else:
            messages.warning(request, str(not_done) % {"title": broadcast.title})
        return redirect(broadcast)

    return view


broadcast_pause = _control(
    actions.pause_broadcast, _lazy("“%(title)s” paused."), _lazy("“%(title)s” was not sending: nothing to pause.")
)
broadcast_resume = _control(
    actions.resume_broadcast, _lazy("“%(title)s” goes on sending."), _lazy("“%(title)s” was not paused.")
)
broadcast_cancel = _control(
    actions.cancel_broadcast, _lazy("“%(title)s” cancelled."), _lazy("“%(title)s” had already ended.")
)


@require_POST
@permission_required(SEND, raise_exception=True)
def broadcast_test(request, pk):
    broadcast = get_object_or_404(Broadcast, pk=pk)
    form = TestSendForm(request.POST)
    if not form.is_valid():
        if broadcast.status == Broadcast.Status.DRAFT:
            return _detail_page(request, broadcast, status=422, test_form=form)
        # A page left open while it was sent: the form is on drafts' pages only.
        for error in form.errors["recipients"]:
            messages.error(request, error)
        return redirect(broadcast)
    for subscriber, outcome in actions.send_test(broadcast, form.cleaned_data["recipients"]):
        if outcome.kind == "sent":
            messages.success(request, _("Test sent to %(name)s.") % {"name": subscriber})
        else:
            messages.error(
                request,
                _("The test to %(name)s was not sent: %(detail)s")
                % {"name": subscriber, "detail": outcome.detail or outcome.reason},
            )
    return redirect(broadcast)


@require_POST
@permission_required(VIEW, raise_exception=True)
@permission_required(CHANGE_LABELS, raise_exception=True)
def broadcast_label(request, pk):
    broadcast = get_object_or_404(Broadcast, pk=pk)
    form = LabelRecipientsForm(request.POST)
    if not form.is_valid():  # the report comes back with the choices kept and the problem under them
        return _detail_page(request, broadcast, status=422, label_form=form)
    operation = actions.label_recipients(
        broadcast, form.cleaned_data["status"], list(form.cleaned_data["labels"]), by=request.user
    )
    if operation.is_finished:
        messages.success(request, operation.summary())
        return redirect(broadcast)
    return redirect(operation)


class _Echo:
    def write(self, value):
        return value


@permission_required(VIEW, raise_exception=True)
def broadcast_export(request, pk):
    """The recipient list as CSV, with the report's filters; streamed, formulas neutralised."""
    broadcast = get_object_or_404(Broadcast, pk=pk)
    filters = DeliveryFilter(request.GET, queryset=queries.deliveries_for_report(broadcast))
    writer = csv.writer(_Echo())
    header = [
        _("Subscriber id"),
        _("Channel"),
        _("Foreign id"),
        _("First name"),
        _("Last name"),
        _("Status"),
        _("Reason"),
        _("Detail"),
        pgettext("broadcast", "Sent"),
        _("Message id"),
    ]

    def rows():
        yield "\ufeff" + writer.writerow(header)
        for delivery in filters.qs.iterator(chunk_size=2000):
            subscriber = delivery.subscriber
            yield writer.writerow(
                [
                    # A report, never imported back: every formula-looking cell gets its ', numbers too.
                    neutralise(value, round_trip=False)
                    for value in (
                        str(subscriber.pk),
                        subscriber.channel.name,
                        subscriber.foreign_id,
                        subscriber.first_name,
                        subscriber.last_name,
                        delivery.get_status_display(),
                        delivery.get_reason_display() if delivery.reason else "",
                        delivery.detail,
                        delivery.sent_at.isoformat() if delivery.sent_at else "",
                        delivery.message_id,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="broadcast-{broadcast.pk}-recipients.csv"'
    return response


@permission_required(VIEW, raise_exception=True)
def subscriber_broadcasts(request, pk):
    """The broadcasts one subscriber was in the audience of: a section of their page, or a page of its own."""
    subscriber = get_object_or_404(Subscriber, pk=pk)
    context = {"subscriber": subscriber, "deliveries": queries.subscriber_broadcasts(subscriber, HISTORY_ROWS)}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "broadcasts/subscriber.html#history", context)
    return render(request, "broadcasts/subscriber.html", context)


@permission_required("broadcasts.view_consolemessage", raise_exception=True)
def console_messages(request):
    """The Live chat tester: what the console channel delivered, newest first."""
    messages_ = ConsoleMessage.objects.select_related("subscriber", "broadcast")
    subscriber = None
    if request.GET.get("subscriber", "").isdigit():
        subscriber = Subscriber.objects.filter(pk=request.GET["subscriber"]).first()
        messages_ = messages_.filter(subscriber=subscriber)
    context = {"console_messages": messages_[:CONSOLE_MESSAGES_SHOWN], "subscriber": subscriber}
    return render(request, "broadcasts/console.html", context)
