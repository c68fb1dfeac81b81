import re
from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import CharField, Exists, F, Func, OuterRef, Q
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from labels.models import Label
from subscribers.models import Channel, Gender, SubscriberLabel

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
        for field, start, end in [
            (_("Created"), "created_after", "created_before"),
            (_("Updated"), "updated_after", "updated_before"),
        ]:
            if cleaned.get(start) and cleaned.get(end) and cleaned[start] > cleaned[end]:
                self.add_error(
                    end,
                    _("%(field)s: the “from” date %(start)s comes after the “to” date %(end)s.")
                    % {"field": field, "start": cleaned[start].isoformat(), "end": cleaned[end].isoformat()},
                )
        return cleaned


class FullName(Func):
    """`first_name || ' ' || last_name`: what the name search looks in.

    On PostgreSQL a trigram index covers `UPPER()` of exactly this expression
    (migration 0005), so a search reads a few index pages instead of every row.
    The words of a search never contain a space, so matching a word against the
    joined name is the same as matching it against either name.
    """

    template = "(%(expressions)s)"
    arg_joiner = " || ' ' || "
    output_field = CharField()

    def __init__(self):
        super().__init__(F("first_name"), F("last_name"))


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


def search_by_name(queryset, value: str):
    """Every word in the first or last name ("ada lovelace" and "Lovelace Ada" both match), or the exact foreign id."""
    words = value.split()
    if not words:
        return queryset
    by_name = Q()
    for word in words:
        by_name &= Q(full_name__icontains=word)
    return queryset.alias(full_name=FullName()).filter(by_name | Q(foreign_id=value.strip()))


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
        return any(value for name, value in self.form.cleaned_data.items() if name != "label_mode")

    def problems(self) -> list[str]:
        """Each invalid filter value as a sentence the operator can act on."""
        return [
            f"{self.form.fields[name].label}: {message}" if name != "__all__" else message
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
