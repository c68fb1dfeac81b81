import re
from urllib.parse import urlencode

from django import forms
from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from labels.exclusive import clash_message
from labels.models import Label, LabelGroup
from labels.names import NAME_PATTERN, normalise_title
from labels.queries import carriers_of_several, carriers_with_group, exclusive_clashes
from labels.widgets import ColorSwatches


class NamedForm(forms.ModelForm):
    """What labels and label groups share: a normalised title unique in any case, and a unique name that a
    blank field generates from the title. On edit, the stored name is kept unless the operator changes it:
    integrations refer to them by name.
    """

    duplicate_title_message = None  # each form says it with its model's word

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
        if self._meta.model.objects.filter(title__iexact=title).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(self.duplicate_title_message, code="duplicate_title")
        return title

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        named = self._meta.model.objects
        if name and not re.fullmatch(NAME_PATTERN, name):
            raise forms.ValidationError(
                _("Use only lowercase letters, digits and _ (at most 64). “%(suggestion)s” would do."),
                code="invalid_name",
                params={"suggestion": named.free_name(name, exclude_pk=self.instance.pk)},
            )
        if name and named.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(
                _("The name “%(name)s” is taken. “%(suggestion)s” is free."),
                code="duplicate_name",
                params={"name": name, "suggestion": named.free_name(name, exclude_pk=self.instance.pk)},
            )
        return name

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("name") and cleaned.get("title") and "name" not in self.errors:
            if self.instance.pk:
                cleaned["name"] = self.instance.name
            else:
                cleaned["name"] = self._meta.model.objects.free_name(cleaned["title"])
        return cleaned


class LabelForm(NamedForm):
    """The one form that says what a valid label is: used by the app's dialog and the admin."""

    class Meta:
        model = Label
        fields = ["title", "name", "description", "color", "group"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}), "color": ColorSwatches}

    duplicate_title_message = _("A label with this title already exists.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].empty_label = _("No group")

    def clean_group(self):
        group = self.cleaned_data.get("group")
        if group is not None and group.exclusive and self.instance.pk and self.instance.group_id != group.pk:
            conflicts = carriers_with_group(self.instance, group)
            if conflicts:
                raise _conflict(
                    ngettext(
                        "“%(group)s” is exclusive, and %(count)s subscriber carries this label and another "
                        "of the group. Take one of them away first.",
                        "“%(group)s” is exclusive, and %(count)s subscribers carry this label and another "
                        "of the group. Take one of them away first.",
                        conflicts,
                    )
                    % {"group": group.title, "count": intcomma(conflicts)},
                    {"label": self.instance.name, "group": group.name},
                )
        return group


def check_not_exclusive_together(labels) -> None:
    """Refuse giving two labels of one exclusive group at once (bulk changes, the admin), naming them."""
    clashes = exclusive_clashes(labels)
    if clashes:
        raise forms.ValidationError(
            clash_message([label.title for label in same] for same in clashes), code="exclusive_clash"
        )


def _conflict(message: str, filters: dict) -> forms.ValidationError:
    """An exclusive group's conflict: what it is, and a link to the subscribers in it on the Subscribers page."""
    link = f"{reverse('subscribers:list')}?{urlencode(filters)}"
    return forms.ValidationError(
        format_html('{} <a href="{}">{}</a>', message, link, _("See them on the Subscribers page")),
        code="exclusive_conflict",
    )


class LabelGroupForm(NamedForm):
    """The Add and Edit group dialogs and the admin: a blank name is generated from the title, as for labels.

    A group made exclusive while some subscribers carry several of its labels is
    refused, with their number and a link to them.
    """

    class Meta:
        model = LabelGroup
        fields = ["title", "name", "description", "exclusive"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    duplicate_title_message = _("A label group with this title already exists.")

    def clean_exclusive(self):
        exclusive = self.cleaned_data["exclusive"]
        group = self.instance
        if exclusive and group.pk and not LabelGroup.objects.filter(pk=group.pk, exclusive=True).exists():
            conflicts = carriers_of_several(group.labels.values_list("pk", flat=True))
            if conflicts:
                raise _conflict(
                    ngettext(
                        "%(count)s subscriber carries several labels of this group: it cannot be exclusive "
                        "until they keep one at most.",
                        "%(count)s subscribers carry several labels of this group: it cannot be exclusive "
                        "until they keep one at most.",
                        conflicts,
                    )
                    % {"count": intcomma(conflicts)},
                    {"group": group.name, "group_mode": "several"},
                )
        return exclusive
