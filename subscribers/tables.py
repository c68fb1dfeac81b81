import django_tables2 as tables
from django.template.defaultfilters import urlencode
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from hexasubs.tables import LeanRowsTable, short_date
from subscribers.models import Subscriber
from subscribers.queries import sorted_after_filtering


def _cell(name, *classes):
    """Cell attributes; the `cell-<name>` class places the cell in a row's card on phones (subscribers.css)."""
    return {"th": {"class": " ".join(classes)}, "td": {"class": " ".join((f"cell-{name}", *classes))}}


# Gender, locale and Updated give way first on a phone; the detail page shows them all.
WIDE_SCREENS_ONLY = ("d-none", "d-md-table-cell")


class SubscriberTable(LeanRowsTable):
    """The columns of the subscriber table; each sort ends with the pk and matches an index."""

    # Shown only to those who may change labels: ticks rows for the bulk label actions.
    select = tables.Column(
        verbose_name=_("Select"),
        orderable=False,
        empty_values=(),
        attrs={"td": {"class": "select-cell"}, "th": {"class": "select-cell"}},
    )
    name = tables.Column(
        # The guide's « Prénom et nom »; a label's Name is « Nom ».
        verbose_name=pgettext_lazy("subscriber", "Name"),
        accessor="first_name",
        order_by=("first_name", "last_name", "id"),
        linkify=lambda record: reverse("subscribers:detail", args=[record.pk]),
        attrs={"td": {"class": "cell-name subscriber-name"}},
    )
    # Sorted by the channel key, which groups subscribers per channel through the
    # (channel, id) index; sorting by title would need a join and a sort of every row.
    channel = tables.Column(
        verbose_name=_("Channel"), accessor="channel", order_by=("channel_id", "id"), attrs=_cell("channel")
    )
    gender = tables.Column(
        verbose_name=_("Gender"), order_by=("gender", "id"), attrs=_cell("gender", *WIDE_SCREENS_ONLY)
    )
    locale = tables.Column(
        verbose_name=_("Locale"), order_by=("locale", "id"), attrs=_cell("locale", *WIDE_SCREENS_ONLY)
    )
    labels = tables.Column(
        verbose_name=_("Labels"), orderable=False, empty_values=(), attrs={"td": {"class": "cell-labels"}}
    )
    created = tables.Column(
        verbose_name=pgettext_lazy("subscriber", "Created"),
        accessor="created_at",
        order_by=("created_at", "id"),
        attrs=_cell("created"),
    )
    updated = tables.Column(
        verbose_name=pgettext_lazy("subscriber", "Updated"),
        accessor="updated_at",
        order_by=("updated_at", "id"),
        attrs={
            **_cell("updated", *WIDE_SCREENS_ONLY),
            "th": {
                "class": " ".join(WIDE_SCREENS_ONLY),
                "title": _(
                    "When the profile last changed (name, gender, locale, time zone, country, picture). "
                    "Label changes do not move it: the subscriber's page shows their label history."
                ),
            },
        },
    )
    actions = tables.Column(
        verbose_name=_("Actions"), orderable=False, empty_values=(), attrs={"td": {"class": "cell-actions text-end"}}
    )

    class Meta:
        model = Subscriber
        fields = []
        order_by = "-created"
        order_by_field = "sort"
        empty_text = None
        row_attrs = {
            "id": lambda record: f"subscriber-{record.pk}",
            # After the "Manage labels" dialog saves, the row reloads itself in place.
            "hx-get": lambda record: reverse("subscribers:row", args=[record.pk]),
            "hx-trigger": lambda record: f"subscriber-{record.pk}-changed from:body",
            "hx-target": "this",
            "hx-swap": "outerHTML",
            "hx-push-url": "false",
        }

    def __init__(self, *args, can_change_labels=False, back_url="", sort_after_filtering=False, **kwargs):
        # Set first: super() orders the data, through the order_<column> methods below.
        self.sort_after_filtering = sort_after_filtering
        super().__init__(*args, exclude=() if can_change_labels else ("select",), **kwargs)
        self.can_change_labels = can_change_labels
        self.back_url = back_url

    def _order(self, queryset, is_descending):
        """The table's ordering, by expressions no index matches when `sort_after_filtering` (for a filter
        matching at most REACHABLE_ROWS: see `sorted_after_filtering`); else django-tables2 orders as usual.

        django-tables2 calls a table's `order_<column>` method, when it has one, to order by that column
        (`Table.order_FOO`); the whole ordering is built here, so several sort columns compose as usual.
        """
        if not self.sort_after_filtering:
            return queryset, False
        keys = [key.for_queryset() for alias in self.order_by for key in self.columns[alias.bare].order_by]
        return sorted_after_filtering(queryset.order_by(*keys)), True

    order_name = order_channel = order_gender = order_locale = order_created = order_updated = _order

    def render_select(self, record):
        return format_html(
            '<input class="form-check-input" type="checkbox" name="ids" value="{}" aria-label="{}" data-select-row>',
            record.pk,
            _("Select %(name)s") % {"name": record},
        )

    def render_name(self, record):
        return record.full_name or record.foreign_id

    def render_channel(self, value):
        return str(value)  # the standard channels' titles in the operator's language

    def render_gender(self, record):
        return record.get_gender_display()

    def render_labels(self, record):
        return format_html_join(
            "",
            '<span class="{}" title="{}">{}</span>',
            ((label.chip_class, label.name, label.title) for label in record.labels.all()),
        )

    def render_created(self, value):
        return short_date(value)

    def render_updated(self, value):
        return short_date(value)

    def render_actions(self, record):
        """The compact "Manage labels" button of subscribers/labels.html#open_button, written here: rendering
        the partial once per row was a fifth of the table's time. tests/test_page_caches.py keeps them equal."""
        if not self.can_change_labels:
            return ""
        url = f"{reverse('subscribers:labels', args=[record.pk])}?next={urlencode(self.back_url)}"
        return format_html(
            '<a class="btn btn-sm btn-outline-primary text-nowrap manage-labels" id="manage-labels-{}" href="{}"'
            ' hx-get="{}" hx-target="#modal-root" hx-swap="innerHTML" hx-push-url="false" aria-haspopup="dialog"'
            ' aria-label="{}" title="{}"> <i class="bi bi-tags" aria-hidden="true"></i>'
            ' <span class="d-md-none d-xl-inline">{}</span> </a>',
            record.pk,
            url,
            url,
            gettext("Manage labels of %(name)s") % {"name": record},
            gettext("Manage labels"),
            gettext("Manage labels"),
        )
