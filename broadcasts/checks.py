"""System checks for broadcasts: what would only show when a broadcast pauses is said at start."""

from django.core.checks import Warning, register
from django.utils.translation import gettext as _

from broadcasts.connectors import unusable_proxies


@register()
def proxy_is_usable(app_configs, **kwargs):
    """An https:// or socks proxy in HTTPS_PROXY / HTTP_PROXY: every broadcast would pause at its first message."""
    return [
        Warning(
            reason,
            hint=_("Until it is changed, every broadcast pauses at its first message with this reason."),
            id="broadcasts.W001",
        )
        for reason in unusable_proxies()
    ]
