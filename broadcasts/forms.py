import zoneinfo
from datetime import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from broadcasts.messages import parse
from broadcasts.models import Broadcast, DeliveryStatus, MessageTag
from labels.forms import check_not_exclusive_together
from labels.models import Label
from segments.models import Segment, normalise_query
from subscribers.filters import SubscriberFilter
from subscribers.models import Subscriber
from subscribers.validators import validate_locale

QUICK_REPLIES_MAX = 13  # Messenger's limit
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000
TEST_RECIPIENTS_MAX = 5
SCHEDULE_ERRORS_ID = "schedule-errors"  # templates/broadcasts/detail.html


def _check_tokens(text: str) -> str:
    _parts, problems = parse(text)
    if problems:
        raise ValidationError(problems)
    return text


def audience_filter(data) -> SubscriberFilter:
    """The Subscribers page's filters, read from the compose form's own fields (or its query string)."""
    return SubscriberFilter(data or None, queryset=Subscriber.objects.all())


def audience_selection(filterset: SubscriberFilter) -> dict:
    """The selection a broadcast stores: the filters as given, empty values left out."""
    data = filterset.data
    return {
        "filters": {
            name: [value for value in data.getlist(name) if value]
            for name in SubscriberFilter.base_filters
            if any(data.getlist(name))
        }
    }


class BroadcastForm(forms.ModelForm):
    """A draft: its title, message, tag, quick replies and audience (the Subscribers page's filters)."""

    quick_replies_text = forms.CharField(
        label=_("Quick replies"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Optional buttons under the message, one per line: Title | PAYLOAD "
            "(up to 13; titles of 20 characters at most)."
        ),
    )
    # The segment the audience came from (segments/): kept while the audience's filters are still the segment's.
    segment = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Broadcast
        fields = ["title", "text", "message_tag", "last_interaction_hours"]
        widgets = {
            "text": forms.Textarea(attrs={"rows": 4}),
            "last_interaction_hours": forms.NumberInput(attrs={"min": 1, "max": 8760}),
        }
        help_texts = {
            "text": _(
                "Plain text. Tokens: {first_name}, {last_name}, {full_name}, with a fallback for an empty value: "
                "{first_name|there}. Write {{ or }} for a brace."
            ),
            "message_tag": _(
                "Promotional messages reach Messenger subscribers only within 24 hours of their last message. "
                "An update that is not promotional may go later with one of Messenger's tags; it must not carry offers."
            ),
            "last_interaction_hours": _(
                "Only subscribers who wrote to the bot within this many hours. Leave empty for all."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["message_tag"].choices = [("", MessageTag.__empty__), *MessageTag.choices[1:]]
        self.fields["last_interaction_hours"].validators.append(_at_most_a_year)
        data = self.data if self.is_bound else None
        if data is None and self.instance.pk:
            initial = self.instance.audience.get("filters", {})
            data = QueryDict(mutable=True)
            for name, values in initial.items():
                data.setlist(name, values)
        self.audience = audience_filter(data)
        if self.instance.pk and not self.is_bound:
            self.initial["segment"] = self.instance.segment_id or ""
            self.initial["quick_replies_text"] = "\n".join(
                f"{reply['title']} | {reply['payload']}" for reply in self.instance.quick_replies
            )
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("class", "form-select" if name == "message_tag" else "form-control")
        # A tag changes who is skipped (window, cap): the audience's count follows it.
        self.fields["message_tag"].widget.attrs.update(
            {
                "hx-get": reverse_lazy("broadcasts:audience"),
                "hx-include": "#audience-fields input, #audience-fields select, this",
                "hx-target": "#audience-count",
                "hx-swap": "outerHTML",
                "hx-push-url": "false",
            }
        )

    def clean_text(self):
        return _check_tokens(self.cleaned_data["text"])

    def clean_quick_replies_text(self):
        replies, problems = [], []
        for number, line in enumerate(self.cleaned_data["quick_replies_text"].splitlines(), start=1):
            if not line.strip():
                continue
            title, _bar, payload = (part.strip() for part in line.partition("|"))
            payload = payload or title
            if not title:
                problems.append(_("Line %(line)s has no title before the “|”.") % {"line": number})
            elif len(title) > QUICK_REPLY_TITLE_MAX:
                problems.append(
                    _("Line %(line)s: the title “%(title)s” is longer than %(max)s characters.")
                    % {"line": number, "title": title, "max": QUICK_REPLY_TITLE_MAX}
                )
            elif len(payload) > QUICK_REPLY_PAYLOAD_MAX:
                problems.append(
                    _("Line %(line)s: the payload is longer than %(max)s characters.")
                    % {"line": number, "max": QUICK_REPLY_PAYLOAD_MAX}
                )
            else:
                replies.append({"title": title, "payload": payload})
        if len(replies) > QUICK_REPLIES_MAX:
            problems.append(_("At most %(max)s quick replies.") % {"max": QUICK_REPLIES_MAX})
        if problems:
            raise ValidationError(problems)
        return replies

    def clean(self):
        cleaned = super().clean()
        for problem in self.audience.problems():
            self.add_error(None, _("Audience: %(problem)s") % {"problem": problem})
        return cleaned

    def audience_segment(self) -> Segment | None:
        """The segment the audience is, if its filters are still exactly the segment's (else it was changed)."""
        value = str(self["segment"].value() or "")
        segment = Segment.objects.filter(pk=value).first() if value.isdigit() else None
        if segment is None or normalise_query(self.audience.data or QueryDict()) != segment.query:
            return None
        return segment

    def save(self, commit=True):
        self.instance.quick_replies = self.cleaned_data["quick_replies_text"]
        self.instance.audience = audience_selection(self.audience)
        self.instance.segment = self.audience_segment()
        return super().save(commit)


def _at_most_a_year(value):
    if value is not None and not 1 <= value <= 8760:
        raise ValidationError(_("Give a number of hours between 1 and 8760 (a year)."))


class VariantForm(forms.Form):
    locale = forms.CharField(
        label=_("Locale"),
        max_length=35,
        validators=[validate_locale],
        required=False,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": _("e.g. fr")}),
    )
    text = forms.CharField(
        label=_("Message in this locale"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
    )

    def clean_text(self):
        return _check_tokens(self.cleaned_data["text"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("locale") and not cleaned.get("text"):
            self.add_error("text", _("Write the message for this locale, or clear the locale."))
        if cleaned.get("text") and not cleaned.get("locale") and "locale" not in self.errors:
            self.add_error("locale", _("Say which locale this message is for, such as fr or pt-BR."))
        return cleaned


class BaseVariantFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            locale = (form.cleaned_data.get("locale") or "").lower()
            if locale and locale in seen:
                form.add_error("locale", _("There is already a message for %(locale)s.") % {"locale": locale})
            seen.add(locale)

    def variants(self) -> dict[str, str]:
        return {
            form.cleaned_data["locale"]: form.cleaned_data["text"]
            for form in self.forms
            if form.cleaned_data.get("locale")
        }


VariantFormSet = forms.formset_factory(VariantForm, formset=BaseVariantFormSet, extra=2, max_num=10)


def variant_formset(data=None, broadcast: Broadcast | None = None):
    initial = [{"locale": key, "text": text} for key, text in (broadcast.variants if broadcast else {}).items()]
    return VariantFormSet(data, initial=initial, prefix="variant")


def _time_zones():
    return sorted(zoneinfo.available_timezones())


class SendForm(forms.Form):
    """Send now, or schedule for a date and time in a time zone."""

    when = forms.ChoiceField(
        label=_("When"),
        choices=[("now", _("Now")), ("later", _("At a date and time"))],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        initial="now",
        error_messages={"required": _("Choose when to send.")},
    )
    date = forms.DateField(
        label=_("Date"), required=False, widget=forms.DateInput({"type": "date", "class": "form-control"})
    )
    time = forms.TimeField(
        label=_("Time"), required=False, widget=forms.TimeInput({"type": "time", "class": "form-control"})
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False, widget=forms.Select({"class": "form-select"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in _time_zones()]
        self.fields["time_zone"].initial = timezone.get_current_timezone_name()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("when") != "later":
            cleaned["at"] = None
            return cleaned
        if not cleaned.get("date") or not cleaned.get("time") or not cleaned.get("time_zone"):
            raise self._schedule_problem(_("Give the date, the time and the time zone of the sending."))
        at = datetime.combine(cleaned["date"], cleaned["time"], tzinfo=zoneinfo.ZoneInfo(cleaned["time_zone"]))
        if at <= timezone.now():
            raise self._schedule_problem(_("That moment has passed: choose a later one, or send now."))
        cleaned["at"] = at
        return cleaned

    def _schedule_problem(self, message) -> ValidationError:
        """The page comes back on the date, which with the time points at the problem shown under them."""
        for name in ("date", "time"):
            self.fields[name].widget.attrs.update({"aria-invalid": "true", "aria-describedby": SCHEDULE_ERRORS_ID})
        self.fields["date"].widget.attrs["autofocus"] = True
        return ValidationError(message)


class TestSendForm(forms.Form):
    recipients = forms.CharField(
        label=_("Foreign ids"),
        max_length=2000,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": _("e.g. demo-console-00000012")}),
        help_text=_("Up to 5 subscribers, separated by commas or spaces: they get the message now, marked as a test."),
    )

    def clean(self):
        cleaned = super().clean()
        if self.errors:  # the page comes back on the field to fix, as typed
            self.fields["recipients"].widget.attrs["autofocus"] = True
        return cleaned

    def clean_recipients(self):
        ids = [part for part in self.cleaned_data["recipients"].replace(",", " ").split() if part]
        if len(ids) > TEST_RECIPIENTS_MAX:
            raise ValidationError(
                ngettext(
                    "Send a test to at most %(max)s subscriber.",
                    "Send a test to at most %(max)s subscribers.",
                    TEST_RECIPIENTS_MAX,
                )
                % {"max": TEST_RECIPIENTS_MAX}
            )
        found = list(Subscriber.objects.filter(foreign_id__in=ids).select_related("channel").order_by("pk"))
        unknown = sorted(set(ids) - {subscriber.foreign_id for subscriber in found})
        if unknown:
            raise ValidationError(
                ngettext(
                    "No subscriber has the foreign id %(ids)s.",
                    "No subscribers have the foreign ids %(ids)s.",
                    len(unknown),
                )
                % {"ids": ", ".join(unknown)}
            )
        return found


class LabelRecipientsForm(forms.Form):
    """Give labels to the recipients of one outcome, to retarget them."""

    status = forms.ChoiceField(
        label=_("Recipients"),
        choices=[
            (DeliveryStatus.SENT, _("Those it was sent to")),
            (DeliveryStatus.FAILED, _("Those it failed for")),
            (DeliveryStatus.SKIPPED, _("Those who were skipped")),
            (DeliveryStatus.UNKNOWN, _("Those whose delivery is unknown")),
        ],
        widget=forms.Select({"class": "form-select"}),
    )
    labels = forms.ModelMultipleChoiceField(
        label=_("Labels"),
        queryset=Label.objects.order_by("title", "pk"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Pick at least one label.")},
    )

    def clean_labels(self):
        labels = self.cleaned_data["labels"]
        check_not_exclusive_together(labels)
        return labels
