"""What the subscribers app does when something it depends on changes."""

from django.dispatch import receiver

from labels.models import Label
from labels.signals import label_deleting
from subscribers.actions import take_label_from_everyone


@receiver(label_deleting, sender=Label)
def take_a_deleted_label_away(sender, label: Label, by=None, **kwargs):
    """A label being deleted leaves its subscribers through a bulk operation, which deletes it when done.

    So the history records each removal and webhooks hear of it, as for any
    other removal, and a label carried by many runs in the background.
    """
    return take_label_from_everyone(label, by=by)
