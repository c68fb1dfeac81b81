"""Writes made on behalf of the bot runtime.

The label changes go through subscribers.actions like every other label change; this module is the
one place the API calls them from (`_LABEL_ACTION_OPTIONS` is where the API's own options go).
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import ApiKey
from subscribers import actions as subscriber_actions
from subscribers.models import Channel, LabelSource, Subscriber
from webhooks.events import announce_subscriber_saved

PROFILE_FIELDS = ["first_name", "last_name", "gender", "locale", "timezone", "country", "avatar_url"]

# Keyword arguments every label change made through the API passes to subscribers.actions.
_LABEL_ACTION_OPTIONS = {"source": LabelSource.API}

# last_used_at is for people ("was this key used this week?"): a minute's precision saves a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def create_api_key(name: str, *, channels=(), by=None, rate_limit_per_minute: int = 600) -> tuple[ApiKey, str]:
    """Create a key; return it with the full secret key, which is shown once and never stored."""
    key = ApiKey(name=name, created_by=by, rate_limit_per_minute=rate_limit_per_minute)
    full_key = key.set_new_secret()
    with transaction.atomic():
        key.save()
        key.channels.set(channels)
    return key, full_key


def revoke_api_keys(keys) -> int:
    """Revoke the keys not yet revoked; requests with them get 401 from now on. Returns how many."""
    return keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def note_key_used(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def upsert_subscriber(channel: Channel, foreign_id: str, profile: dict) -> tuple[Subscriber, bool, list[str]]:
    """Record an interaction: create the subscriber on first contact, else update what changed.

    `profile` holds only the fields the channel sent. `updated_at` moves only when a field
    really changed; `last_seen_at` always does. Two simultaneous first contacts create one
    subscriber: the loser of the insert race gets the unique-constraint error and updates
    the winner's row instead. Returns (subscriber, created, names of changed fields).
    """
    now = timezone.now()
    with transaction.atomic():
        subscriber = _locked(channel, foreign_id)
        if subscriber is None:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(
                        channel=channel,
                        foreign_id=foreign_id,
                        created_at=now,
                        updated_at=now,
                        last_seen_at=now,
                        **profile,
                    )
                announce_subscriber_saved(subscriber, channel.name, created=True, changed=[])
                return subscriber, True, []
            except IntegrityError:
                subscriber = _locked(channel, foreign_id)
                if subscriber is None:
                    raise
        changed = [name for name, value in profile.items() if getattr(subscriber, name) != value]
        for name in changed:
            setattr(subscriber, name, profile[name])
        subscriber.last_seen_at = now
        if changed:
            subscriber.updated_at = now
            subscriber.save(update_fields=[*changed, "updated_at", "last_seen_at"])
            announce_subscriber_saved(subscriber, channel.name, created=False, changed=changed)
        else:
            subscriber.save(update_fields=["last_seen_at"])
    return subscriber, False, changed


def _locked(channel, foreign_id):
    return Subscriber.objects.select_for_update().filter(channel=channel, foreign_id=foreign_id).first()


def change_subscriber_labels(subscriber: Subscriber, *, add, remove) -> tuple[int, int]:
    """Add and remove labels on one subscriber for the bot runtime. Returns (added, removed) counts."""
    return subscriber_actions.change_labels(subscriber, add=add, remove=remove, **_LABEL_ACTION_OPTIONS)
