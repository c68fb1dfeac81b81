"""The keys and channels each process has checked lately, so that a bot API request costs no query for them.

A key revoked (or given other channels or another rate limit) in the administration stops working in the
other processes within KEY_CACHE_SECONDS, the time they keep what they read; in the process that revoked it,
at once (api.actions.revoke_api_keys calls `forget`).
"""

import time

from api.models import ApiKey
from subscribers.models import Channel

KEY_CACHE_SECONDS = 10

_keys: dict[str, tuple[float, ApiKey]] = {}
_channels: dict[str, tuple[float, Channel]] = {}


def active_key(prefix: str) -> ApiKey | None:
    """The unrevoked key with this prefix, with the ids of the channels it is limited to in
    `allowed_channel_ids` (empty: every channel). From the cache, or two queries."""
    now = time.monotonic()
    cached = _keys.get(prefix)
    if cached is not None and cached[0] > now:
        return cached[1]
    key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None:
        # Unknown prefixes are not remembered, so made-up keys cannot grow the cache.
        _keys.pop(prefix, None)
        return None
    key.allowed_channel_ids = frozenset(
        ApiKey.channels.through.objects.filter(apikey_id=key.pk).values_list("channel_id", flat=True)
    )
    _keys[prefix] = (now + KEY_CACHE_SECONDS, key)
    return key


def channel_named(name: str) -> Channel | None:
    """The channel called `name`, or None: from the cache, or one query."""
    now = time.monotonic()
    cached = _channels.get(name)
    if cached is not None and cached[0] > now:
        return cached[1]
    channel = Channel.objects.filter(name=name).first()
    if channel is not None:
        _channels[name] = (now + KEY_CACHE_SECONDS, channel)
    return channel


def may_use(key: ApiKey, channel: Channel) -> bool:
    allowed = getattr(key, "allowed_channel_ids", None)
    if allowed is None:  # a key not read through active_key
        allowed = set(ApiKey.channels.through.objects.filter(apikey_id=key.pk).values_list("channel_id", flat=True))
    return not allowed or channel.pk in allowed


def forget() -> None:
    """Empty this process's cache: the next requests read keys and channels again."""
    _keys.clear()
    _channels.clear()
