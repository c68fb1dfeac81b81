"""Who may call the API, on which channels, and how often."""

import time

from django.core.cache import cache
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from api.actions import LAST_USED_PRECISION, note_key_used
from api.errors import BodyTooLarge, InvalidInput
from api.models import ApiKey, split_key
from subscribers.models import Channel

MAX_BODY_BYTES = 64 * 1024
NUL_MESSAGE = gettext_lazy("Null characters are not allowed.")


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer hxs_<prefix>_<secret>`; a missing, wrong or revoked key gives 401."""

    def __call__(self, request):
        # The front door, before anything reads the body or reaches the database.
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            raise BodyTooLarge
        _reject_nul_characters(request)
        return super().__call__(request)

    def authenticate(self, request, token):
        parts = split_key(token)
        if parts is None:
            return None
        prefix, secret = parts
        key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
        if key is None or not key.matches(secret):
            return None
        _note_use_once(key)
        return key


def _note_use_once(key: ApiKey) -> None:
    """Record the key's use at most once a minute, from one process only.

    Requests of one key that arrive together all read the same stale `last_used_at`; without this
    each would update the key's row and queue behind the others' row lock. The first to claim the
    stale value in the shared cache writes; the others go on without touching the row.
    """
    if key.last_used_at is not None and timezone.now() - key.last_used_at < LAST_USED_PRECISION:
        return
    seen = key.last_used_at.timestamp() if key.last_used_at else 0
    if cache.add(f"api-key-used:{key.pk}:{seen}", True, timeout=LAST_USED_PRECISION.total_seconds() * 2):
        note_key_used(key)


def _reject_nul_characters(request):
    """PostgreSQL cannot store NUL characters: refuse them in the path and the query up front."""
    if "\x00" in request.path:
        raise InvalidInput(["path"], NUL_MESSAGE)
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise InvalidInput(["query", name], NUL_MESSAGE)


class PerKeyRateLimit(BaseThrottle):
    """A fixed one-minute window per key, counted in the cache (atomic `incr`)."""

    WINDOW_SECONDS = 60

    def allow_request(self, request):
        key = request.auth
        now = time.time()
        window = int(now // self.WINDOW_SECONDS)
        cache_key = f"api-rate:{key.pk}:{window}"
        cache.add(cache_key, 0, timeout=self.WINDOW_SECONDS * 2)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=self.WINDOW_SECONDS * 2)
            count = 1
        self._wait = (window + 1) * self.WINDOW_SECONDS - now
        return count <= key.rate_limit_per_minute

    def wait(self):
        return max(self._wait, 1)


def permitted_channel(key: ApiKey, name: str) -> Channel:
    """The channel called `name` (404 if none), provided `key` may use it (403 if not). One query."""
    restrictions = ApiKey.channels.through.objects.filter(apikey_id=key.pk)
    channel = (
        Channel.objects.filter(name=name)
        .annotate(
            restricted=Exists(restrictions),
            listed=Exists(restrictions.filter(channel_id=OuterRef("pk"))),
        )
        .first()
    )
    if channel is None:
        raise Http404(_("There is no channel called “%(name)s”.") % {"name": name})
    if channel.restricted and not channel.listed:
        raise HttpError(403, _("This API key may not be used for the channel “%(name)s”.") % {"name": name})
    return channel


def permitted_channels(key: ApiKey):
    """A condition on subscribers: on a channel `key` may use."""
    restrictions = ApiKey.channels.through.objects.filter(apikey_id=key.pk)
    return ~Exists(restrictions) | Exists(restrictions.filter(channel_id=OuterRef("channel_id")))
