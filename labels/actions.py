"""Every change to labels themselves goes through these functions.

The app's dialogs, the admin and the API call them; each runs in one
transaction. Labels never import the subscribers app: what a label's deletion
means for subscribers is the subscribers app's business (`label_deleting`).
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from labels.forms import LabelForm, LabelGroupForm
from labels.models import Label, LabelGroup
from labels.queries import forget_label_choices
from labels.signals import label_deleting


def create_label(form: LabelForm) -> Label | None:
    """Create the label described by a valid `form`.

    Another operator may have taken the title or the name between validation and
    the insert; the database constraint then refuses the row and the conflict
    becomes an error on `form`, and the function returns None.
    """
    return _save(form)


def update_label(form: LabelForm) -> Label | None:
    """Save a valid `form` bound to an existing label; conflicts become form errors as in `create_label`."""
    return _save(form)


def _save(form: LabelForm) -> Label | None:
    try:
        with transaction.atomic():
            label = form.save()
            _labels_changed()
            return label
    except IntegrityError:
        _explain_conflict(form)
        return None


def _explain_conflict(form: LabelForm) -> None:
    data = form.cleaned_data
    others = Label.objects.exclude(pk=form.instance.pk) if form.instance.pk else Label.objects.all()
    if others.filter(name=data["name"]).exists():
        suggestion = Label.objects.free_name(data["name"], exclude_pk=form.instance.pk)
        form.add_error(
            "name",
            _("Someone has just created a label named “%(name)s”. “%(suggestion)s” is free.")
            % {"name": data["name"], "suggestion": suggestion},
        )
    elif others.filter(title__iexact=data["title"]).exists():
        form.add_error("title", _("Someone has just created a label with this title."))
    else:
        form.add_error(None, _("The label could not be saved because it changed meanwhile. Please try again."))


def delete_label(label: Label, *, by=None):
    """Delete `label`, after it is taken away from every subscriber who carries it.

    The labels app knows nothing of subscribers: it sends `label_deleting`, and
    the subscribers app takes the label away through a bulk operation (recorded,
    announced to webhooks) that deletes the label when it finishes. Returns None
    when nobody carried the label and it is deleted now, else that operation:
    finished (the label is gone) or still running in the background.
    """
    with transaction.atomic():
        taking_away = [work for _receiver, work in label_deleting.send(sender=Label, label=label, by=by) if work]
        if not taking_away:
            delete_unused_label(label)
    return taking_away[0] if taking_away else None


def delete_unused_label(label: Label) -> None:
    """Delete a label nobody carries any more (`delete_label` is the way in for everyone else)."""
    label.delete()
    _labels_changed()


def _labels_changed() -> None:
    """The Subscribers page's cached list of labels is out of date: now (for the rest of this transaction)
    and once it commits (another request may have cached the old list in between)."""
    forget_label_choices()
    transaction.on_commit(forget_label_choices)


def save_label_group(form: LabelGroupForm) -> LabelGroup | None:
    """Create or update the label group of a valid `form`.

    A title or name taken meanwhile is refused by the database and becomes a
    form error (None is returned). Making the group exclusive re-counts the
    subscribers carrying several of its labels inside the transaction, with the
    group's row locked, so a change that slipped in after the form's check is
    refused too.
    """
    try:
        with transaction.atomic():
            if form.instance.pk and form.cleaned_data.get("exclusive"):
                LabelGroup.objects.select_for_update().filter(pk=form.instance.pk).first()
                form.clean_exclusive()
            return form.save()
    except IntegrityError:
        others = LabelGroup.objects.exclude(pk=form.instance.pk) if form.instance.pk else LabelGroup.objects.all()
        if others.filter(name=form.cleaned_data["name"]).exists():
            form.add_error("name", _("Someone has just created a label group with this name."))
        else:
            form.add_error("title", _("Someone has just created a label group with this title."))
        return None
    except ValidationError as error:
        form.add_error("exclusive", error)
        return None


def delete_label_group(group: LabelGroup, *, by=None) -> int:
    """Delete `group`; its labels stay, in no group, and nobody loses a label. Returns how many it held.

    `by` (the operator) is accepted like `delete_label`'s; nothing about subscribers changes, so nothing
    is recorded in their history. The group's row is locked first so that a label put in it meanwhile is
    ungrouped too, not lost with it.
    """
    with transaction.atomic():
        LabelGroup.objects.select_for_update().filter(pk=group.pk).first()
        count = Label.objects.filter(group=group).update(group=None, updated_at=timezone.now())
        group.delete()
        _labels_changed()
    return count
