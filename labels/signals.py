"""Signals the labels app sends to the apps built on it, which it does not know."""

from django.dispatch import Signal

# Sent by `labels.actions.delete_label` inside its transaction, with `label` and `by` (the user or None),
# before anything is deleted. A receiver that keeps data about the label (the subscribers app: who carries
# it) deals with it and returns the work it started when that work deletes the label itself; it returns
# None when there was nothing to do, and `delete_label` deletes the label at once.
label_deleting = Signal()
