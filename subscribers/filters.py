import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import BooleanField, Exists, ExpressionWrapper, Lookup, OuterRef, Q
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from labels.models import Label, LabelGroup
from labels.queries import label_choices
from subscribers.models import Channel, Gender, SubscriberLabel
from subscribers.search import fold

NOT_PROVIDED = "unknown"
DATE = forms.DateInput({"type": "date"})
LOCALE_PREFIX = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def _validate_locale_prefix(value):
    if not LOCALE_PREFIX.match(value):
        raise ValidationError(
            _("“%(value)s” is not a locale: write a language such as en, or a locale such as en-US."),
            params={"value": value},
        )


class FlagInput(forms.CheckboxInput):
    """A checkbox sent as `name=1`; other values reach the field unchanged, so it can reject them."""

    def __init__(self, attrs=None):
        super().__init__(attrs={**(attrs or {}), "value": "1"}, check_test=lambda value: value == "1")

    def value_from_datadict(self, data, files, name):
        return data.get(name, "")


class SubscriberFilterForm(forms.Form):
    """The form behind `SubscriberFilter`: checks that each date range runs forwards."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
                widget.attrs["class"] = "form-check-input"
            elif isinstance(widget, forms.Select):
                widget.attrs["class"] = "form-select"
            else:
                widget.attrs["class"] = "form-control form-control-sm"

    def clean(self):
        cleaned = super().clean()
        for start, end in [("created_after", "created_before"), ("updated_after", "updated_before")]:
            if cleaned.get(start) and cleaned.get(end) and cleaned[start] > cleaned[end]:
                # On the "until" field, which the problem list names (and the valid filters still apply).
                self.add_error(
                    end,
                    _("The “from” date %(start)s comes after the “to” date %(end)s.")
                    % {"start": cleaned[start].isoformat(), "end": cleaned[end].isoformat()},
                )
        return cleaned


class QuickCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes whose `<input>` tags are written in Python, as Django's templates would write them.

    The page renders each label's box with `{{ choice.tag }}`: through the
    template engine that took about 70 ms for 200 labels, a third of the page.
    """

    def _render(self, template_name, context, renderer=None):
        widget = context.get("widget", {})
        if template_name != self.option_template_name or widget.get("wrap_label"):
            return super()._render(template_name, context, renderer)
        value = "" if widget["value"] is None else format_html(' value="{}"', widget["value"])
        attrs = format_html_join("", "{}", ((_attribute(name, value),) for name, value in widget["attrs"].items()))
        return format_html('<input type="{}" name="{}"{}{}>', widget["type"], widget["name"], value, attrs)


def _attribute(name, value):
    """One attribute as django/forms/widgets/attrs.html writes it."""
    if value is False:
        return ""
    return format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)


@lru_cache(maxsize=8)
def _checkbox_parts(choices: tuple, html_name: str, auto_id: str) -> list[tuple[str, str, str]]:
    """Each label's checkbox row, escaped once per list of labels: (name, the markup before the `checked`
    attribute, the markup after it)."""
    return [
        (
            choice.name,
            format_html(
                '<div class="form-check" data-filter-text="{} {}"><input type="checkbox" name="{}" value="{}"'
                ' class="form-check-input" id="{}_{}"',
                choice.title.lower(),
                choice.name,
                html_name,
                choice.name,
                auto_id,
                index,
            ),
            format_html(
                '><label class="form-check-label" for="{}_{}"><span class="{}">{}</span></label></div>',
                auto_id,
                index,
                choice.chip_class,
                choice.title,
            ),
        )
        for index, choice in enumerate(choices)
    ]


# What can follow a letter or digit in a folded name (ASCII: subscribers.search), in brackets of at most 16
# characters, the most pg_trgm expands into trigrams: letters, digits, punctuation and space, control characters.
FOLLOWERS = ["a-h", "i-p", "q-x", "yz0-5", "6-9", " -/", ":-@", "[-`", "{-~", "\x01-\x08", "\x0e-\x1b", "\x7f"]
PAIR = re.compile(r"^[a-z0-9]{2}$")


def search_by_name(queryset, value: str):
    """Every word of the search in the name, in any order, forgiving case, accents and script; or the exact foreign id.

    "helene" finds Hélène, "ermakova" and "Ермакова" find Ермакова, "lovelace ada" finds Ada
    Lovelace: the words are folded as the stored `search_name` is (subscribers.search), and each must
    appear in it (`LIKE '%word%'`, with % and _ typed by the operator matched as themselves). On
    PostgreSQL a trigram index on `search_name` answers it. A word of one or two letters has no
    trigram: beside a longer word the index finds the longer one and the short one is checked on those
    rows only. A search made only of short words still matches anywhere in the name; for two letters
    or digits, "zh", the index is given the trigrams that contain them (`_pair_in_index`). One letter
    alone matches so many people that a page fills at once.
    """
    value = value.strip()
    if not value:
        return queryset
    words = fold(value).split()
    by_name = Q()
    for word in words:
        by_name &= Q(search_name__contains=word)
    if not by_name:  # nothing left once folded (symbols anyascii has no letters for): a foreign id only
        return queryset.filter(foreign_id=value)
    vendor = connections[queryset.db].vendor
    pairs = [word for word in words if PAIR.match(word)]
    if vendor == "postgresql" and pairs and all(len(word) < 3 for word in words):
        by_name &= _pair_in_index(pairs[0])
    found = by_name | Q(foreign_id=value)
    if vendor == "sqlite" and any(len(word) > 1 for word in words):
        return queryset.filter(Seldom(found))
    return queryset.filter(found)


class Seldom(Lookup):
    """SQLite's `likelihood(condition, 0.001)`: tells its planner that few rows match.

    Without it SQLite walks the sort index and tests every row it meets (0.2 to 0.3 s at 100,000
    subscribers for the API's rare-name search); told, it reads the table once and sorts what it found
    (30 to 40 ms). A Lookup, so the hint is the WHERE term itself: Django would compare any other
    expression with `= 1`, which hides the hint. A search of one letter alone matches most people: it is
    left to walk.
    """

    lookup_name = "seldom"
    prepare_rhs = False

    def __init__(self, condition: Q):
        super().__init__(ExpressionWrapper(condition, output_field=BooleanField()), None)

    def as_sql(self, compiler, connection):
        sql, params = compiler.compile(self.lhs)
        return f"likelihood({sql}, 0.001)", params


def _pair_in_index(pair: str) -> Q:
    """A condition the trigram index answers, true wherever `pair` (two letters or digits) is in the name.

    `LIKE '%zh%'` has no trigram, so PostgreSQL read the table or walked the page's order (0.3 to 2 s at a
    million subscribers). But "zh" in a name is followed by some character, making a trigram "zh?", or
    ends it (trigram "zh "): listed as a regular expression, pg_trgm looks those trigrams up (about 1 ms).
    The exact `LIKE` stays beside it, so the answer is the same.
    """
    return Q(search_name__regex="|".join(f"{pair}[{chars}]" for chars in FOLLOWERS)) | Q(search_name__endswith=pair)


def _start_of(day):
    """Midnight at the start of `day` here, or None past the calendar's edge (the database holds UTC)."""
    try:
        start = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
        start.astimezone(UTC)
    except OverflowError:
        return None
    return start


class SubscriberFilter(django_filters.FilterSet):
    """The filters of the subscriber table, each under its URL parameter name.

    Label filters are `Exists` subqueries on the assignments, so a subscriber
    with several matching labels still appears once, without DISTINCT.

    `ids_after` / `ids_up_to` limit the subscribers to a range of ids, repeated
    inside each label subquery: PostgreSQL does not carry a range on the
    subscriber's id into them, and otherwise walks a big label's index from its
    first carrier (105 ms for a chunk of bulk change half-way through a million,
    0.5 ms with the range). The chunks of bulk changes and the API's id cursor use it.
    """

    def __init__(self, *args, ids_after: int | None = None, ids_up_to: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.id_range = {bound: value for bound, value in (("gt", ids_after), ("lte", ids_up_to)) if value is not None}
        if self.id_range:
            self.queryset = self.queryset.filter(**{f"pk__{bound}": value for bound, value in self.id_range.items()})

    def _assignments(self):
        assignments = SubscriberLabel.objects.filter(subscriber=OuterRef("pk"))
        return assignments.filter(**{f"subscriber_id__{bound}": value for bound, value in self.id_range.items()})

    q = django_filters.CharFilter(method="search", label=_("Search"))
    channel = django_filters.ModelMultipleChoiceFilter(
        queryset=Channel.objects.order_by("title", "pk"),
        to_field_name="name",
        method="in_channels",
        label=_("Channel"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("There is no channel named “%(value)s”.")},
    )
    gender = django_filters.ChoiceFilter(
        choices=[*[(value, label) for value, label in Gender.choices if value], (NOT_PROVIDED, _("Not provided"))],
        method="with_gender",
        label=_("Gender"),
        empty_label=_("Any gender"),
        error_messages={"invalid_choice": _("“%(value)s” is not a gender choice.")},
    )
    locale = django_filters.CharFilter(
        method="with_locale", label=_("Locale"), validators=[_validate_locale_prefix], max_length=35
    )
    label = django_filters.ModelMultipleChoiceFilter(
        queryset=Label.objects.order_by("title", "pk"),
        to_field_name="name",
        method="applied_in_filter_queryset",
        label=_("Labels"),
        widget=QuickCheckboxes,
        error_messages={"invalid_choice": _("There is no label named “%(value)s”; it may have been deleted.")},
    )
    label_mode = django_filters.ChoiceFilter(
        choices=[("any", _("Any of these labels")), ("all", _("All of these labels")), ("none", _("None of these"))],
        method="applied_in_filter_queryset",
        label=_("Label mode"),
        empty_label=None,
        error_messages={"invalid_choice": _("The label mode can be any, all or none, not “%(value)s”.")},
    )
    group = django_filters.ModelChoiceFilter(
        queryset=LabelGroup.objects.order_by("title", "pk"),
        to_field_name="name",
        method="in_group",
        label=_("Label group"),
        empty_label=_("Any group"),
        error_messages={"invalid_choice": _("There is no label group named “%(value)s”; it may have been deleted.")},
    )
    group_mode = django_filters.ChoiceFilter(
        choices=[
            ("any", _("Carries a label of the group")),
            ("none", _("Carries no label of the group")),
            ("several", _("Carries several labels of the group")),
        ],
        method="applied_in_filter_queryset",
        label=_("Group mode"),
        empty_label=None,
        error_messages={"invalid_choice": _("The group mode can be any, none or several, not “%(value)s”.")},
    )
    no_labels = django_filters.ChoiceFilter(
        choices=[("1", _("Without any label"))],
        method="without_labels",
        label=_("Without any label"),
        widget=FlagInput,
        error_messages={"invalid_choice": _("“No labels” is switched on with 1, not “%(value)s”.")},
    )
    created_after = django_filters.DateFilter(
        method="on_or_after", field_name="created_at", label=_("Created from"), widget=DATE
    )
    created_before = django_filters.DateFilter(
        method="on_or_before", field_name="created_at", label=_("Created until"), widget=DATE
    )
    updated_after = django_filters.DateFilter(
        method="on_or_after", field_name="updated_at", label=_("Updated from"), widget=DATE
    )
    updated_before = django_filters.DateFilter(
        method="on_or_before", field_name="updated_at", label=_("Updated until"), widget=DATE
    )

    class Meta:
        form = SubscriberFilterForm
        fields = []

    @property
    def is_filtered(self) -> bool:
        """Whether any valid filter narrows the table."""
        self.form.is_valid()
        return any(value for name, value in self.form.cleaned_data.items() if name not in ("label_mode", "group_mode"))

    def labels_menu_count(self) -> int:
        """How many filters the Labels menu holds, for its button's badge: each chosen label, "only subscribers
        without any label", and a label group."""
        form = self.form
        labels = [value for value in form["label"].value() or () if str(value).strip()]
        return len(labels) + (form["no_labels"].value() == "1") + bool(str(form["group"].value() or "").strip())

    def label_checkboxes(self) -> str:
        """The label filter's checkboxes, one per label, the chosen ones ticked.

        From the cached list of labels (labels.queries.label_choices) rather than the field's queryset:
        iterating the field made a model instance and a widget context per label, 200 on every page view.
        The markup is what the field's widget writes (QuickCheckboxes), inside the page's `form-check` rows.
        """
        field = self.form["label"]
        chosen = {str(value) for value in field.value() or ()}
        invalid = ' aria-invalid="true"' if field.errors else ""
        parts = _checkbox_parts(tuple(label_choices()), field.html_name, field.auto_id)
        return mark_safe(
            "".join(f"{before}{' checked' if name in chosen else ''}{invalid}{after}" for name, before, after in parts)
        )

    def problems(self) -> list[str]:
        """Each invalid filter value as a sentence the operator can act on."""
        return [
            _("%(field)s: %(problem)s") % {"field": self.form.fields[name].label, "problem": message}
            if name != "__all__"
            else message
            for name, messages in self.form.errors.items()
            for message in messages
        ]

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        labels = self.form.cleaned_data.get("label")
        if not labels:
            return queryset
        mode = self.form.cleaned_data.get("label_mode") or "any"
        ids = [label.pk for label in labels]
        if mode == "all":
            for label_id in ids:
                queryset = queryset.filter(Exists(self._assignments().filter(label=label_id)))
            return queryset
        carrying = Exists(self._assignments().filter(label__in=ids))
        return queryset.filter(~carrying if mode == "none" else carrying)

    def applied_in_filter_queryset(self, queryset, name, value):
        return queryset

    def in_group(self, queryset, name, value):
        """`group=NAME` with `group_mode` any (the default), none, or several (those an exclusive group forbids)."""
        if value is None:
            return queryset
        in_group = self._assignments().filter(label__group=value)
        mode = self.form.cleaned_data.get("group_mode") or "any"
        if mode == "several":
            others = SubscriberLabel.objects.filter(
                subscriber_id=OuterRef("subscriber_id"), label__group=value
            ).exclude(label_id=OuterRef("label_id"))
            return queryset.filter(Exists(in_group.filter(Exists(others))))
        return queryset.filter(~Exists(in_group) if mode == "none" else Exists(in_group))

    def search(self, queryset, name, value):
        return search_by_name(queryset, value)

    def in_channels(self, queryset, name, value):
        return queryset.filter(channel__in=value) if value else queryset

    def with_gender(self, queryset, name, value):
        return queryset.filter(gender="" if value == NOT_PROVIDED else value)

    def with_locale(self, queryset, name, value):
        language, _dash, rest = value.partition("-")
        tag = language.lower() + (f"-{rest.upper() if len(rest) == 2 else rest}" if rest else "")
        return queryset.filter(Q(locale__iexact=tag) | Q(locale__istartswith=f"{tag}-"))

    def without_labels(self, queryset, name, value):
        return queryset.filter(~Exists(self._assignments())) if value else queryset

    def on_or_after(self, queryset, name, value):
        start = _start_of(value)
        # None: a day before the calendar's first instant in UTC, so every row is after it.
        return queryset if start is None else queryset.filter(**{f"{name}__gte": start})

    def on_or_before(self, queryset, name, value):
        end = _start_of(value + timedelta(days=1)) if value < date.max else None
        # None: the calendar's last day, so every row is before its end.
        return queryset if end is None else queryset.filter(**{f"{name}__lt": end})
