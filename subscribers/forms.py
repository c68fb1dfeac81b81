from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from labels.forms import check_not_exclusive_together
from labels.models import Label
from subscribers.filters import SubscriberFilter
from subscribers.models import Subscriber

PER_PAGE_CHOICES = [25, 50, 100]


class TableOptionsForm(forms.Form):
    """The page number and page size of the subscriber table, read once from the URL."""

    page = forms.CharField(required=False)
    per_page = forms.TypedChoiceField(
        choices=[(str(n), str(n)) for n in PER_PAGE_CHOICES],
        coerce=int,
        required=False,
        empty_value=PER_PAGE_CHOICES[0],
        error_messages={"invalid_choice": _("Rows per page can be 25, 50 or 100, not “%(value)s”: showing 25.")},
    )

    def clean_page(self):
        value = self.cleaned_data["page"].strip()
        if not value:
            return 1
        if not value.isdigit() or int(value) < 1:
            raise ValidationError(
                _("There is no page “%(value)s”: pages are numbered from 1. Showing page 1."),
                params={"value": value},
            )
        return int(value)

    @property
    def page_number(self) -> int:
        self.is_valid()
        return self.cleaned_data.get("page", 1)

    @property
    def rows_per_page(self) -> int:
        self.is_valid()
        return self.cleaned_data.get("per_page", PER_PAGE_CHOICES[0])


class LabelIdsField(forms.Field):
    """The ids of the labels the dialog showed as chosen; deleted ones are fine here."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return {int(item) for item in value or []}
        except (TypeError, ValueError):
            raise ValidationError(_("The form was damaged. Close the dialog, open it again and retry.")) from None


class SubscriberLabelsForm(forms.Form):
    """One operator's choice of labels for one subscriber.

    `labels_before` carries the labels the dialog showed as chosen, so saving
    applies only this operator's additions and removals: a label another
    operator added or removed meanwhile is left as they made it.
    """

    labels = forms.ModelMultipleChoiceField(
        queryset=Label.objects.order_by("title", "pk"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Labels"),
        error_messages={
            "invalid_choice": _(
                "A label you chose no longer exists (it was probably deleted meanwhile). "
                "The list below shows the current labels; nothing was saved."
            ),
            "invalid_pk_value": _("“%(pk)s” is not a label. Nothing was saved."),
        },
    )
    labels_before = LabelIdsField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each label's group decides whether the dialog shows it as a checkbox or as one of a group's radios.
        self.fields["labels"].queryset = Label.objects.select_related("group").order_by("title", "pk")

    def exclusive_groups(self) -> list[tuple]:
        """The exclusive groups, each shown as radio buttons with "none": [(group, its labels, chosen label id)].

        A radio's name is `group-<id>`, its value the chosen label's id (empty for none).
        """
        groups: dict = {}
        for label in self.fields["labels"].queryset:
            if label.group_id and label.group.exclusive:
                groups.setdefault(label.group, []).append(label)
        if self.is_bound:
            picked = {key: self.data.get(key, "") for key in (f"group-{group.pk}" for group in groups)}
            chosen = {group: picked[f"group-{group.pk}"] for group in groups}
        else:
            initial = {int(pk) for pk in self.initial.get("labels", [])}
            chosen = {
                group: next((label.pk for label in labels if label.pk in initial), "")
                for group, labels in groups.items()
            }
        return [
            (group, labels, str(chosen[group])) for group, labels in sorted(groups.items(), key=lambda g: g[0].title)
        ]

    def clean(self):
        cleaned = super().clean()
        # The radios of exclusive groups (`group-<id>`): their chosen labels join the ticked ones.
        picked = [value for key, value in self.data.items() if key.startswith("group-") and value]
        if picked and "labels" in cleaned:
            if not all(value.isdigit() for value in picked):
                raise ValidationError(_("The form was damaged. Close the dialog, open it again and retry."))
            found = list(Label.objects.filter(pk__in=[int(value) for value in picked]))
            if len(found) < len(set(picked)):
                raise ValidationError(self.fields["labels"].error_messages["invalid_choice"])
            cleaned["labels"] = [*cleaned["labels"], *found]
        if cleaned.get("labels"):
            check_not_exclusive_together(cleaned["labels"])  # ticked by a damaged or hand-made form
        return cleaned

    def changes(self) -> tuple[set[int], set[int]]:
        """(label ids to add, label ids to remove), as this operator changed them."""
        chosen = {label.pk for label in self.cleaned_data["labels"]}
        before = self.cleaned_data["labels_before"]
        return chosen - before, before - chosen


class SubscriberIdsField(forms.Field):
    """The ids of the rows ticked in the table."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return sorted({int(item) for item in value or []})
        except (TypeError, ValueError):
            raise ValidationError(_("The selection was damaged. Go back to the table and select again.")) from None


class BulkSelectionForm(forms.Form):
    """Which subscribers a bulk label change applies to, as the table submitted them.

    `filters` is the table's filter as it was when the page was shown (a query
    string), so "all matching" means the filter as submitted, not as a later URL
    says. Without `all_matching`, the ticked `ids` are the selection.
    """

    kind = forms.ChoiceField(
        choices=[("add", _("Add labels")), ("remove", _("Remove labels"))],
        widget=forms.HiddenInput,
        error_messages={"required": _("Choose Add labels or Remove labels.")},
    )
    filters = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)
    ids = SubscriberIdsField(required=False)
    all_matching = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_filters(self):
        params = QueryDict(self.cleaned_data["filters"])
        filters = {name: params.getlist(name) for name in SubscriberFilter.base_filters if name in params}
        problems = SubscriberFilter(params, queryset=Subscriber.objects.all()).problems()
        if problems:
            raise ValidationError(
                _("The table's filter no longer applies (%(problems)s). Go back to the table and select again.")
                % {"problems": " ".join(problems)}
            )
        return filters

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_matching") and not cleaned.get("ids") and "ids" not in self.errors:
            raise ValidationError(
                _(
                    "No subscriber is selected. Tick the subscribers in the table, "
                    "or select all those matching the filter, then try again. Nothing was changed."
                ),
                code="empty",
            )
        return cleaned

    def selection(self) -> dict:
        """The selection as `subscribers.queries.subscribers_matching` reads it."""
        selection = {"filters": self.cleaned_data["filters"]}
        if not self.cleaned_data["all_matching"]:
            selection["ids"] = self.cleaned_data["ids"]
        return selection


class BulkLabelsForm(BulkSelectionForm):
    """A bulk selection and the labels to add to it or remove from it."""

    labels = forms.ModelMultipleChoiceField(
        queryset=Label.objects.order_by("title", "pk"),
        widget=forms.CheckboxSelectMultiple,
        label=_("Labels"),
        error_messages={
            "required": _("Pick at least one label. Nothing was changed."),
            "invalid_choice": _(
                "A label you picked no longer exists (it was probably deleted meanwhile). "
                "The list below shows the current labels; nothing was changed."
            ),
            "invalid_pk_value": _("“%(pk)s” is not a label. Nothing was changed."),
        },
    )

    def __init__(self, *args, picking=False, **kwargs):
        super().__init__(*args, **kwargs)
        # While the operator is still picking, no label chosen yet is not an error.
        self.fields["labels"].required = not picking

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == "add" and cleaned.get("labels"):
            try:
                check_not_exclusive_together(cleaned["labels"])
            except ValidationError as error:
                self.add_error("labels", error)
        return cleaned
