"""What the subscribers app does when something it depends on changes."""

from django.db.models import Exists, OuterRef
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from labels.models import Label
from subscribers.actions import remove_labels
from subscribers.models import LabelSource, Subscriber, SubscriberLabel


@receiver(pre_delete, sender=Label)
def take_a_deleted_label_away(sender, instance: Label, **kwargs):
    """A label deleted from the app or the admin leaves its subscribers through the label actions.

    So their `updated_at` moves, the history records each removal, and
    webhooks hear of it, as for any other removal. The labels app cannot do
    this itself: it knows nothing of subscribers.
    """
    carrying = Subscriber.objects.filter(
        Exists(SubscriberLabel.objects.filter(subscriber=OuterRef("pk"), label=instance))
    )
    remove_labels(carrying, [instance], source=LabelSource.LABEL_DELETED)
