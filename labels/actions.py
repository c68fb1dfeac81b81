"""Every change to labels themselves goes through these functions.

The app's dialogs call them; each runs in one transaction. Labels never import
the subscribers app: the assignments are reached through `Label.assignments`
and `Label.subscribers`, the reverse relations the subscribers app declares.
"""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from labels.forms import LabelForm
from labels.models import Label


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
            return form.save()
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


def delete_label(label: Label) -> int:
    """Delete `label` and take it away from every subscriber who carries it, in one transaction.

    The subscribers app takes the label away first (see subscribers.receivers),
    so their `updated_at` moves and the history records it. Returns how many
    subscribers lost the label.
    """
    with transaction.atomic():
        changed = label.assignments.count()
        label.delete()
    return changed
