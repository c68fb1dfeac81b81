import re

from django import forms
from django.utils.translation import gettext_lazy as _

from labels.models import Label
from labels.names import NAME_PATTERN, normalise_title
from labels.widgets import ColorSwatches


class LabelForm(forms.ModelForm):
    """The one form that says what a valid label is: used by the app's dialog and the admin.

    A blank name is generated from the title. On edit, the stored name is kept
    unless the operator changes it: integrations refer to labels by name.
    """

    class Meta:
        model = Label
        fields = ["title", "name", "description", "color"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}), "color": ColorSwatches}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        if not self.instance.pk:
            self.fields["name"].help_text = _("Leave blank to generate it from the title.")

    def clean_title(self):
        # Normalised first, so a look-alike (a zero-width space, a right-to-left mark) is found as a duplicate.
        title = normalise_title(self.cleaned_data["title"])
        if not title:
            raise forms.ValidationError(
                _("Write a title with visible letters, digits or symbols."), code="invisible_title"
            )
        same_title = Label.objects.filter(title__iexact=title).exclude(pk=self.instance.pk)
        if same_title.exists():
            raise forms.ValidationError(_("A label with this title already exists."), code="duplicate_title")
        return title

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if name and not re.fullmatch(NAME_PATTERN, name):
            raise forms.ValidationError(
                _("Use only lowercase letters, digits and _ (at most 64). “%(suggestion)s” would do."),
                code="invalid_name",
                params={"suggestion": Label.objects.free_name(name, exclude_pk=self.instance.pk)},
            )
        if name and Label.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            suggestion = Label.objects.free_name(name, exclude_pk=self.instance.pk)
            raise forms.ValidationError(
                _("The name “%(name)s” is taken. “%(suggestion)s” is free."),
                code="duplicate_name",
                params={"name": name, "suggestion": suggestion},
            )
        return name

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("name") and cleaned.get("title") and "name" not in self.errors:
            if self.instance.pk:
                cleaned["name"] = self.instance.name
            else:
                cleaned["name"] = Label.objects.free_name(cleaned["title"])
        return cleaned
