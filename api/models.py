import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from subscribers.models import Channel

KEY_PREFIX = "hxs"
PREFIX_LENGTH = 12


def hash_secret(secret: str) -> str:
    # Keys are 256-bit random strings, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """`hxs_<prefix>_<secret>` → (prefix, secret), or None when the key is not shaped like ours."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != PREFIX_LENGTH or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A key the bot runtime sends as `Authorization: Bearer hxs_<prefix>_<secret>`.

    Only the prefix (indexed, for the lookup) and a hash of the secret are stored:
    the full key is shown once, when it is created.
    """

    name = models.CharField(_("name"), max_length=100, help_text=_("Who uses this key, e.g. “Messenger bot”."))
    prefix = models.CharField(_("prefix"), max_length=PREFIX_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    channels = models.ManyToManyField(
        Channel,
        blank=True,
        related_name="+",
        verbose_name=_("channels"),
        help_text=_("Leave empty to allow every channel."),
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        _("requests per minute"), default=600, help_text=_("Requests above this rate get 429 Too Many Requests.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        editable=False,
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.name} ({KEY_PREFIX}_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def set_new_secret(self) -> str:
        """Give the key a fresh prefix and secret; return the full key, which is never stored."""
        self.prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        self.secret_hash = hash_secret(secret)
        return f"{KEY_PREFIX}_{self.prefix}_{secret}"

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))
