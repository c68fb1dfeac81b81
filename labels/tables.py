from urllib.parse import urlencode

import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from hexasubs.tables import LeanRowsTable, short_date
from labels.models import Label
from labels.queries import subscriber_counts, with_subscriber_count


def _from(breakpoint, td_class=""):
    """Cell attributes for a column shown only from the Bootstrap `breakpoint` up."""
    shown = f"d-none d-{breakpoint}-table-cell"
    return {"th": {"class": shown}, "td": {"class": f"{shown} {td_class}".strip()}}


def _breakable(name):
    """A name that may wrap after its underscores, for narrow screens."""
    return mark_safe(escape(name).replace("_", "_<wbr>"))  # the name is escaped first


class LabelTable(LeanRowsTable):
    """The Labels page's table.

    Subscriber counts are fetched for the shown page only, in one query, unless
    the table is sorted on them.
    """

    title = tables.Column(verbose_name=_("Title"), order_by=("title", "pk"))
    # Narrow screens show the name under the title and leave out the description and dates;
    # Created waits for wide screens, so that the buttons stay in sight at 1280px beside the side menu.
    name = tables.Column(verbose_name=_("Name"), order_by=("name", "pk"), attrs=_from("md"))
    description = tables.Column(
        verbose_name=_("Description"), orderable=False, attrs=_from("lg", td_class="label-desc")
    )
    group = tables.Column(verbose_name=_("Group"), order_by=("group__title", "title", "pk"), attrs=_from("sm"))
    subscriber_count = tables.Column(
        verbose_name=_("Subscribers"),
        attrs={"th": {"class": "text-end"}, "td": {"class": "text-end"}},
    )
    # Plain columns: DateTimeColumn compiles a template for every cell.
    created_at = tables.Column(
        verbose_name=_("Created"), order_by=("created_at", "pk"), attrs=_from("xxl", "text-nowrap")
    )
    updated_at = tables.Column(
        verbose_name=_("Updated"), order_by=("updated_at", "pk"), attrs=_from("sm", "text-nowrap")
    )
    actions = tables.Column(
        verbose_name=_("Actions"),
        empty_values=(),
        orderable=False,
        attrs={"th": {"class": "text-end"}, "td": {"class": "text-end text-nowrap"}},
    )

    class Meta:
        model = Label
        fields = ["title", "name", "description", "group", "subscriber_count", "created_at", "updated_at", "actions"]
        order_by = ("title",)
        empty_text = _("No labels match.")
        attrs = {"class": "table table-hover align-middle mb-0", "id": "labels"}
        template_name = "labels/table.html"

    def __init__(self, *args, can_change=False, can_delete=False, **kwargs):
        self.can_change, self.can_delete = can_change, can_delete
        if not (can_change or can_delete):
            kwargs["exclude"] = ("actions",)
        super().__init__(*args, **kwargs)

    def order_subscriber_count(self, queryset, is_descending):
        queryset = with_subscriber_count(queryset)
        direction = "-" if is_descending else ""
        return queryset.order_by(f"{direction}subscriber_count", f"{direction}pk"), True

    def before_render(self, request):
        labels = list(self.page.object_list.data)
        if labels and not hasattr(labels[0], "subscriber_count"):
            counts = subscriber_counts(label.pk for label in labels)
            for label in labels:
                label.subscriber_count = counts.get(label.pk, 0)

    def render_title(self, record):
        return format_html(
            '<span class="{}">{}</span><code class="d-block d-md-none small mt-1">{}</code>',
            record.chip_class,
            record.title,
            _breakable(record.name),
        )

    def render_group(self, value):
        badge = (
            format_html(' <span class="badge text-bg-light border">{}</span>', _("exclusive"))
            if value.exclusive
            else ""
        )
        return format_html(
            '<a href="{}?{}">{}</a>{}', reverse("labels:list"), urlencode({"group": value.name}), value.title, badge
        )

    def render_name(self, value):
        return format_html("<code>{}</code>", value)

    def render_subscriber_count(self, record, value):
        url = f"{reverse('subscribers:list')}?{urlencode({'label': record.name})}"
        return format_html(
            '<a href="{}" hx-boost="false" aria-label="{}">{}</a>',
            url,
            _("Subscribers with the label %(title)s") % {"title": record.title},
            intcomma(value),
        )

    def render_created_at(self, value):
        return short_date(value)

    def render_updated_at(self, value):
        return short_date(value)

    def render_actions(self, record):
        buttons = []
        if self.can_change:
            label = _("Edit “%(title)s”") % {"title": record.title}
            buttons.append(("labels:edit", "edit", "btn-outline-secondary", "bi-pencil", label))
        if self.can_delete:
            label = _("Delete “%(title)s”") % {"title": record.title}
            buttons.append(("labels:delete", "delete", "btn-outline-danger", "bi-trash", label))
        return format_html_join(
            " ",
            '<a class="btn btn-sm {}" id="{}-label-{}" href="{}" hx-get="{}" hx-target="#modal-root"'
            ' hx-swap="innerHTML" aria-haspopup="dialog" aria-label="{}" title="{}">'
            '<i class="bi {}" aria-hidden="true"></i></a>',
            (
                (style, verb, record.pk, url, url, label, label, icon)
                for view, verb, style, icon, label in buttons
                for url in [reverse(view, args=[record.pk])]
            ),
        )
