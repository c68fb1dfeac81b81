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

from api import key_cache
from api.actions import LAST_USED_PRECISION, note_key_used
from api.errors import BodyTooLarge, InvalidInput
from api.models import ApiKey, split_key
from hexasubs.http import content_length
from subscribers.models import Channel

MAX_BODY_BYTES = 64 * 1024
NUL_MESSAGE = gettext_lazy("Null characters are not allowed.")


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer hxs_<prefix>_<secret>`; a missing, wrong or revoked key gives 401."""

    def __init__(self, max_body_bytes: int = MAX_BODY_BYTES):
        super().__init__()
        self.max_body_bytes = max_body_bytes

    def __call__(self, request):
        # The front door, before anything reads the body or reaches the database.
        if content_length(request) > self.max_body_bytes:
            raise BodyTooLarge(self.max_body_bytes)
        _reject_nul_characters(request)
        return super().__call__(request)

    def authenticate(self, request, token):
        parts = split_key(token)
        if parts is None:
            return None
        prefix, secret = parts
        key = key_cache.active_key(prefix)
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
    else:
        # Another process records it. This one keeps the key (api.key_cache): without this, each of its
        # requests would ask the cache again until the key is read anew.
        key.last_used_at = timezone.now()


def _reject_nul_characters(request):
    """PostgreSQL cannot store NUL characters: refuse them in the path and the query up front."""
    if "\x00" in request.path:
        raise InvalidInput(["path"], NUL_MESSAGE)
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise InvalidInput(["query", name], NUL_MESSAGE)


class PerKeyRateLimit(BaseThrottle):
    """A fixed one-minute window per key, counted in the shared cache (atomic `incr`), so it holds however
    many processes serve the API.

    Each process adds its requests to the shared count in small batches rather than one at a time: every
    1 % of the key's limit (at most SHARED_BATCH requests), and at every request once the count nears the
    limit (the last 10 %). Most requests thus cost no round trip to the cache; in return a key may get
    through up to one batch per process more than its limit in a minute, about 1 % per process.
    """

    WINDOW_SECONDS = 60
    SHARED_BATCH = 20

    def __init__(self):
        # Per key prefix (unique, unlike ids a rolled-back test reuses): [window, shared count, not yet added].
        self._counts: dict[str, list[int]] = {}

    def allow_request(self, request):
        key = request.auth
        now = time.time()
        window = int(now // self.WINDOW_SECONDS)
        state = self._counts.get(key.prefix)
        if state is None or state[0] != window:
            state = self._counts[key.prefix] = [window, 0, 0]
        state[2] += 1
        limit = key.rate_limit_per_minute
        if state[2] >= max(1, min(self.SHARED_BATCH, limit // 100)) or (state[1] + state[2]) * 10 >= limit * 9:
            state[1], state[2] = self._add_to_shared_count(f"api-rate:{key.pk}:{window}", state[2]), 0
        self._wait = (window + 1) * self.WINDOW_SECONDS - now
        return state[1] + state[2] <= limit

    def _add_to_shared_count(self, cache_key: str, requests: int) -> int:
        try:
            return cache.incr(cache_key, requests)
        except ValueError:  # the window's first requests
            if cache.add(cache_key, requests, timeout=self.WINDOW_SECONDS * 2):
                return requests
            return cache.incr(cache_key, requests)

    def wait(self):
        return max(self._wait, 1)


def permitted_channel(key: ApiKey, name: str) -> Channel:
    """The channel called `name` (404 if none), provided `key` may use it (403 if not).

    No query when this process has looked the channel up in the last KEY_CACHE_SECONDS.
    """
    channel = key_cache.channel_named(name)
    if channel is None:
        raise Http404(_("There is no channel called “%(name)s”.") % {"name": name})
    if not key_cache.may_use(key, channel):
        raise HttpError(403, _("This API key may not be used for the channel “%(name)s”.") % {"name": name})
    return channel


def permitted_channels(key: ApiKey):
    """A condition on subscribers: on a channel `key` may use."""
    restrictions = ApiKey.channels.through.objects.filter(apikey_id=key.pk)
    return ~Exists(restrictions) | Exists(restrictions.filter(channel_id=OuterRef("channel_id")))
