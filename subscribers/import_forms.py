"""The forms of the Import page and of the Export dialog."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from subscribers import imports
from subscribers.forms import BulkSelectionForm
from subscribers.models import Channel, SubscriberImport

IGNORE = ""


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        error_messages={
            "required": _("Choose a CSV file to upload."),
            "empty": _("The file is empty: it needs a header row, then one row per subscriber."),
        },
    )


class ImportSettingsForm(forms.ModelForm):
    """What an import does: which column fills which field, the mode, and what to do with labels.

    One `column_N` choice per column of the file's header. Creating unknown labels
    is offered only to those who may add labels.
    """

    replace_labels = forms.TypedChoiceField(
        label=_("Labels in the file"),
        choices=[
            ("0", _("are added to each subscriber's labels")),
            ("1", _("replace each subscriber's labels (labels not in the file are removed)")),
        ],
        coerce=lambda value: value == "1",
        widget=forms.RadioSelect,
    )
    create_labels = forms.TypedChoiceField(
        label=_("Labels that do not exist yet"),
        choices=[("1", _("are created")), ("0", _("reject the rows that name them"))],
        coerce=lambda value: value == "1",
        widget=forms.RadioSelect,
    )

    class Meta:
        model = SubscriberImport
        fields = ["delimiter", "mode", "replace_labels", "create_labels", "channel"]
        widgets = {"mode": forms.RadioSelect}

    def __init__(self, *args, may_create_labels: bool, **kwargs):
        super().__init__(*args, **kwargs)
        job = self.instance
        self.read_with = job.delimiter
        self.fields["delimiter"] = forms.ChoiceField(label=_("Separator"), choices=imports.DELIMITERS)
        self.fields["channel"].queryset = Channel.objects.order_by("title", "pk")
        self.fields["channel"].empty_label = _("The file's channel column")
        self.fields["channel"].label = _("Channel of every row")
        self.initial["replace_labels"] = "1" if job.replace_labels else "0"
        self.initial["create_labels"] = "1" if job.create_labels and may_create_labels else "0"
        self.may_create_labels = may_create_labels
        if not may_create_labels:
            self.fields["create_labels"].disabled = True
            self.fields["create_labels"].help_text = _(
                "You may not create labels: rows naming a label that does not exist are rejected."
            )
        choices = [
            (IGNORE, _("Ignore this column")),
            *((name, imports.COLUMN_TITLES[name]) for name in imports.COLUMNS),
        ]
        self.column_names = []
        for index, title in enumerate(job.header):
            name = f"column_{index}"
            self.fields[name] = forms.ChoiceField(
                label=title or _("Column %(number)s") % {"number": index + 1}, choices=choices, required=False
            )
            self.initial.setdefault(name, job.mapping[index] if index < len(job.mapping) else IGNORE)
            self.column_names.append(name)

        for bound in self.fields.values():
            if isinstance(bound.widget, forms.RadioSelect):
                bound.widget.attrs["class"] = "form-check-input"
            elif isinstance(bound.widget, forms.Select):
                bound.widget.attrs["class"] = "form-select form-select-sm"

    def column_fields(self):
        return [self[name] for name in self.column_names]

    def clean_create_labels(self):
        return self.cleaned_data["create_labels"] and self.may_create_labels

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("delimiter") and cleaned["delimiter"] != self.read_with:
            return cleaned  # a new separator: the columns are read again, and mapped anew
        mapping = [cleaned.get(name, IGNORE) for name in self.column_names]
        seen = set()
        for name, field_name in zip(self.column_names, mapping, strict=True):
            if field_name and field_name in seen:
                self.add_error(
                    name,
                    _("Another column fills “%(field)s” already: choose one of them.")
                    % {"field": imports.COLUMN_TITLES[field_name]},
                )
            seen.add(field_name)
        if "foreign_id" not in seen:
            raise ValidationError(_("Choose the column that holds the foreign id: it is required."))
        if "channel" not in seen and not cleaned.get("channel"):
            raise ValidationError(_("Choose the column that holds the channel, or one channel for every row."))
        mode = cleaned.get("mode")
        if mode in (SubscriberImport.Mode.LABELS_ADD, SubscriberImport.Mode.LABELS_REMOVE) and "labels" not in seen:
            raise ValidationError(_("Adding or removing labels needs the column that holds the labels."))
        cleaned["mapping"] = mapping
        return cleaned

    def save(self, commit=True):
        job = super().save(commit=False)
        if job.delimiter != self.read_with:
            imports.read_again(job, job.delimiter)
        else:
            job.mapping = self.cleaned_data["mapping"]
        if commit:
            job.save()
        return job


FORMATS = [
    ("csv", _("CSV, comma-separated (UTF-8)")),
    ("excel", _("CSV for Excel: semicolons and a byte order mark, as Excel in French expects")),
]


class ExportForm(BulkSelectionForm):
    """The selection to export (the table's filter, or ticked rows) and the file's format."""

    kind = None
    format = forms.ChoiceField(
        label=_("Format"),
        choices=FORMATS,
        initial="csv",
        required=False,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )

    def clean_format(self):
        return self.cleaned_data["format"] or "csv"

    def clean(self):
        cleaned = forms.Form.clean(self)
        if not cleaned.get("all_matching") and not cleaned.get("ids"):
            cleaned["all_matching"] = True  # no row ticked: the whole filter
        return cleaned
