"""Signals sent by subscribers.actions, so other apps (webhooks) can react without the actions knowing them."""

from django.dispatch import Signal

# Sent inside the action's transaction after labels changed on at least one subscriber, with
# `changed_at` (the `updated_at` stamped on exactly the subscribers that changed),
# `added` and `removed` (label ids) and `by` (the user, or None).
labels_changed = Signal()
