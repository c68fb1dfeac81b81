import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from broadcasts.models import Broadcast, Delivery
from hexasubs.tables import short_date

STATUS_BADGES = {
    "draft": "text-bg-light border",
    "scheduled": "text-bg-info",
    "sending": "text-bg-primary",
    "paused": "text-bg-warning",
    "cancelled": "text-bg-secondary",
    "done": "text-bg-success",
    "failed": "text-bg-danger",
    "queued": "text-bg-light border",
    "sent": "text-bg-success",
    "skipped": "text-bg-secondary",
    "unknown": "text-bg-warning",
}


def status_badge(value: str, label: str) -> str:
    return format_html('<span class="badge {}">{}</span>', STATUS_BADGES.get(value, "text-bg-light"), label)


class BroadcastTable(tables.Table):
    title = tables.Column(
        verbose_name=_("Title"), order_by=("title", "pk"), linkify=lambda record: record.get_absolute_url()
    )
    status = tables.Column(verbose_name=_("Status"), order_by=("status", "pk"))
    total_count = tables.Column(
        verbose_name=_("Recipients"),
        order_by=("total_count", "pk"),
        attrs={"th": {"class": "text-end"}, "td": {"class": "text-end"}},
    )
    sent_count = tables.Column(
        verbose_name=pgettext_lazy("broadcast", "Sent"),
        order_by=("sent_count", "pk"),
        attrs={"th": {"class": "text-end d-none d-sm-table-cell"}, "td": {"class": "text-end d-none d-sm-table-cell"}},
    )
    when = tables.Column(
        verbose_name=_("When"),
        accessor="created_at",
        order_by=("created_at", "pk"),
        attrs={"td": {"class": "text-nowrap"}},
    )
    created_by = tables.Column(
        verbose_name=_("By"),
        orderable=False,
        attrs={"th": {"class": "d-none d-md-table-cell"}, "td": {"class": "d-none d-md-table-cell"}},
    )

    class Meta:
        model = Broadcast
        fields = []
        order_by = "-when"
        empty_text = _("No broadcast yet.")
        attrs = {"class": "table table-hover align-middle mb-0 broadcast-table"}

    def render_status(self, record):
        return status_badge(record.status, record.get_status_display())

    def render_total_count(self, record):
        return intcomma(record.total_count) if record.is_frozen else "—"

    def render_sent_count(self, record):
        return intcomma(record.sent_count) if record.is_frozen else "—"

    def render_when(self, record):
        if record.status == Broadcast.Status.SCHEDULED and record.scheduled_at:
            local = localtime(record.scheduled_at)
            return format_html(
                '<time datetime="{}" title="{}">{}</time>',
                local.isoformat(),
                _("Scheduled"),
                date_format(local, "SHORT_DATETIME_FORMAT"),
            )
        return short_date(record.started_at or record.created_at)

    def render_created_by(self, value):
        return value.get_full_name() or value.get_username()


class DeliveryTable(tables.Table):
    name = tables.Column(
        verbose_name=pgettext_lazy("subscriber", "Name"),
        accessor="subscriber",
        orderable=False,
        linkify=lambda record: reverse("subscribers:detail", args=[record.subscriber_id]),
    )
    channel = tables.Column(verbose_name=_("Channel"), accessor="subscriber__channel", orderable=False)
    status = tables.Column(verbose_name=_("Status"), orderable=False)
    reason = tables.Column(verbose_name=_("Reason"), orderable=False, empty_values=())
    sent_at = tables.Column(
        verbose_name=pgettext_lazy("date", "Sent"),
        orderable=False,
        attrs={"th": {"class": "d-none d-md-table-cell"}, "td": {"class": "d-none d-md-table-cell text-nowrap"}},
    )

    class Meta:
        model = Delivery
        fields = []
        empty_text = _("No recipient matches these filters.")
        attrs = {"class": "table table-sm align-middle mb-0 recipient-table"}

    def render_name(self, value):
        return str(value)

    def render_channel(self, value):
        return str(value)

    def render_status(self, record):
        return status_badge(record.status, record.get_status_display())

    def render_reason(self, record):
        if not record.reason and not record.detail:
            return ""
        return format_html(
            '{}<span class="d-block small text-body-secondary text-break">{}</span>',
            record.get_reason_display(),
            record.detail,
        )

    def render_sent_at(self, value):
        return short_date(value)
