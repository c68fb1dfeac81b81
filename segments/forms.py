from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from segments.models import QUERY_MAX, Segment, normalise_query
from subscribers.filters import SubscriberFilter
from subscribers.models import Subscriber


def clean_filter_query(value: str) -> str:
    """The Subscribers page's filter as a segment stores it; refused when a filter does not apply."""
    params = QueryDict(value or "")
    problems = SubscriberFilter(params, queryset=Subscriber.objects.none()).problems()
    if problems:
        raise ValidationError(
            _("The filter cannot be saved: %(problems)s Correct it on the Subscribers page, then save again.")
            % {"problems": " ".join(problems)}
        )
    query = normalise_query(params)
    if len(query) > QUERY_MAX:
        raise ValidationError(_("This filter is too long to be saved as a segment."))
    return query


class SegmentForm(forms.ModelForm):
    """A segment's name and description; a new one also takes the filter it saves (`filters`)."""

    filters = forms.CharField(required=False, widget=forms.HiddenInput, max_length=QUERY_MAX * 2)

    class Meta:
        model = Segment
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"name": _("Shown in the side menu and the segment picker; shared with the whole team.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            del self.fields["filters"]
        self.fields["description"].required = False

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError(_("Give the segment a name."))
        taken = Segment.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(_("There is already a segment named “%(name)s”.") % {"name": name})
        return name

    def clean_filters(self):
        return clean_filter_query(self.cleaned_data["filters"])

    def save(self, commit=True):
        if "filters" in self.cleaned_data:
            self.instance.query = self.cleaned_data["filters"]
        return super().save(commit)
