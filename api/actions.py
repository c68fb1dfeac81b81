"""Writes to the API's own records: its keys.

Subscribers and their labels are written through subscribers.actions, like every other change.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from api import key_cache
from api.models import ApiKey

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
    """Revoke the keys not yet revoked. Returns how many.

    Requests with them get 401 at once from this process, and from the others within
    api.key_cache.KEY_CACHE_SECONDS (10 s), the time they keep a key they have checked.
    """
    revoked = keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    # Now, and again once committed: a request of this process in between would have read the key again.
    key_cache.forget()
    transaction.on_commit(key_cache.forget)
    return revoked


def note_key_used(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
