"""System checks for a production start."""

from django.conf import settings
from django.core.checks import Warning, register
from django.utils.translation import gettext as _

PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@register()
def cache_is_shared(app_configs, **kwargs):
    """Rate limits count in the cache: a cache per process lets each worker grant the whole limit."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or backend not in PER_PROCESS_CACHES:
        return []
    return [
        Warning(
            _("The cache (%(backend)s) is private to each process.") % {"backend": backend},
            hint=_(
                "API rate limits would count per worker process. Set REDIS_URL, or leave CACHE_URL unset "
                "to use the database cache."
            ),
            id="hexasubs.W001",
        )
    ]
