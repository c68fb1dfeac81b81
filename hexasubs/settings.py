"""Hexasubs settings, read from the environment.

Every value has a safe default for development except SECRET_KEY when DEBUG is
off: a production start without one fails loudly instead of running with a
well-known key.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.contrib.messages import constants as message_constants
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# `make run` leaves a git-ignored .env (DEBUG=1 and a generated SECRET_KEY) so that every manage.py command
# works in development; the real environment wins over it. ENV_FILE="" reads none, as on a fresh host.
_ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if _ENV_FILE and Path(_ENV_FILE).is_file():
    environ.Env.read_env(_ENV_FILE)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _strict_bool(name, default):
    """Like env.bool, but "perhaps" is an error rather than False."""
    value = env.str(name, default=str(default)).strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError(f"expected one of 1/0, true/false, yes/no, on/off, not {value!r}")


def _read(name, reader, default):
    """Read one setting, turning a malformed value into a clear start-up error."""
    try:
        return reader(name, default=default)
    except (ValueError, environ.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"The environment variable {name} is malformed: {exc}") from exc


DEBUG = _read("DEBUG", _strict_bool, False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment, or set DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "django_tables2",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_countries",  # for its translated country names
    "hexasubs",
    "labels",
    # Before django_tasks_db: its db_worker command is ours, with the sweep that resumes stalled work.
    "subscribers",
    "django_tasks_db",
    "ninja",
    "api",
    "webhooks",
    "segments",
    "broadcasts",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Bot API calls (keys, not sessions) go from here straight to their view: the rest is the console's.
    "hexasubs.middleware.BotApiMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "hexasubs.middleware.HtmxMessagesMiddleware",
    # Last, as django-axes asks: turns a refused login of a locked-out person into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hexasubs.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "hexasubs.wsgi.application"

DATABASES = {
    "default": _read("DATABASE_URL", env.db_url, f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] not in {"django.db.backends.sqlite3", "django.db.backends.postgresql"}:
    raise ImproperlyConfigured(
        "The environment variable DATABASE_URL is malformed: use sqlite:///path/to/file.sqlite3 "
        "or postgres://user:password@host:port/name."
    )
# Persistent connections: seconds a connection is kept between requests (0: closed after each), as
# DATABASE_URL's ?conn_max_age= also sets. The bot API spends a good part of a short request connecting without.
if env.str("CONN_MAX_AGE", default=""):
    DATABASES["default"]["CONN_MAX_AGE"] = _read("CONN_MAX_AGE", env.int, 0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a background worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": _read("TASKS_BACKEND", env.str, "django_tasks_db.DatabaseBackend"),
    }
}
# Bulk label changes of more subscribers than this run in the background (`manage.py db_worker`), in
# chunks either way. About 10 µs a subscriber on PostgreSQL (BENCHMARKS.md): 10,000 answer in a blink.
BULK_BACKGROUND_THRESHOLD = _read("BULK_BACKGROUND_THRESHOLD", env.int, 10_000)
# Subscriber imports (subscribers/imports.py): a larger upload is refused before it is read. The file is
# streamed to IMPORT_DIR, never held in memory; web processes and workers must share that folder.
IMPORT_UPLOAD_LIMIT_MB = _read("IMPORT_UPLOAD_LIMIT_MB", env.int, 200)
if IMPORT_UPLOAD_LIMIT_MB < 1:
    raise ImproperlyConfigured("The environment variable IMPORT_UPLOAD_LIMIT_MB is malformed: use 1 or more.")
IMPORT_DIR = Path(_read("IMPORT_DIR", env.str, str(BASE_DIR / "var" / "imports")))
# Uploaded files (and staged rows) of imports never started, or ended this many hours ago, are removed by the
# workers' sweep and `manage.py remove_old_import_files`; an ended import keeps its report, not its file.
IMPORT_KEEP_HOURS = _read("IMPORT_KEEP_HOURS", env.float, 24)
if IMPORT_KEEP_HOURS <= 0:
    raise ImproperlyConfigured("The environment variable IMPORT_KEEP_HOURS is malformed: use hours above 0.")

# `manage.py db_worker` and `manage.py import_subscribers` lower their own CPU priority by this much (nice, 0 to
# 19; hexasubs/priority.py): background work (bulk changes, imports, broadcasts) yields the cores to the web
# processes, so pages keep their speed while it runs.
WORKER_NICENESS = _read("WORKER_NICENESS", env.int, 10)
if not 0 <= WORKER_NICENESS <= 19:
    raise ImproperlyConfigured("The environment variable WORKER_NICENESS is malformed: use 0 to 19.")

# Broadcasts (broadcasts/): at most BROADCAST_FREQUENCY_CAP promotional messages per subscriber in any 24 hours;
# promotional messages on Messenger only to people whose last message is younger than BROADCAST_WINDOW_HOURS
# (Messenger's window is 24 h: the rest is a safety margin for the time the sending takes).
BROADCAST_FREQUENCY_CAP = _read("BROADCAST_FREQUENCY_CAP", env.int, 1)
BROADCAST_WINDOW_HOURS = _read("BROADCAST_WINDOW_HOURS", env.float, 23)
if not 0 < BROADCAST_WINDOW_HOURS <= 24 or BROADCAST_FREQUENCY_CAP < 0:
    raise ImproperlyConfigured(
        "BROADCAST_WINDOW_HOURS must be above 0 and at most 24, and BROADCAST_FREQUENCY_CAP 0 or more."
    )
# Where the Messenger connector calls the Graph Send API (tests point it at a fake server on 127.0.0.1).
MESSENGER_GRAPH_URL = _read("MESSENGER_GRAPH_URL", env.str, "https://graph.facebook.com/v23.0")
# How many background tasks share one broadcast's sending (each a loop claiming batches): one per worker.
BROADCAST_WORKERS = _read("BROADCAST_WORKERS", env.int, 2)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username, or from one
# address, logins from there are refused for LOGIN_COOLOFF_MINUTES, on the app's and the admin's login alike.
# ModelBackend with each user's permissions cached until a group or permission changes (hexasubs.permissions).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "hexasubs.permissions.CachedModelBackend"]
AXES_FAILURE_LIMIT = _read("LOGIN_FAILURE_LIMIT", env.int, 5)
AXES_COOLOFF_TIME = timedelta(minutes=_read("LOGIN_COOLOFF_MINUTES", env.int, 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "hexasubs.lockout.locked_out"
AXES_CLIENT_IP_CALLABLE = "hexasubs.lockout.client_ip"
AXES_VERBOSE = False

# Toasts take Bootstrap's colours: an error is "danger".
MESSAGE_TAGS = {message_constants.ERROR: "danger"}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = _read("TIME_ZONE", env.str, "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Tests and `make run` serve files straight from the finders; production serves the manifest.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"
DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5-responsive.html"

# Scripts and styles come only from our own origin; inline scripts need the nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "https:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# Production hardening; each can be relaxed from the environment behind a TLS proxy.
SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", _strict_bool, not DEBUG)
SESSION_COOKIE_SECURE = _read("SESSION_COOKIE_SECURE", _strict_bool, not DEBUG)
CSRF_COOKIE_SECURE = _read("CSRF_COOKIE_SECURE", _strict_bool, not DEBUG)
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Preloading is asked of the browsers' makers and takes months to undo: only when the operator says so.
SECURE_HSTS_PRELOAD = _read("SECURE_HSTS_PRELOAD", _strict_bool, False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
BEHIND_TLS_PROXY = _read("BEHIND_TLS_PROXY", _strict_bool, False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The cache holds the API's per-key rate-limit counters, so every process must share it: Redis when
# REDIS_URL (or any CACHE_URL) is set, else a table in the database (created by `migrate`).
# hexasubs.checks warns when a production start has a cache of its own per process.
if env.str("CACHE_URL", default=""):
    CACHES = {"default": _read("CACHE_URL", env.cache_url, None)}
elif env.str("REDIS_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _read("REDIS_URL", env.str, None),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "hexasubs_cache"}}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    CACHES["default"]["BACKEND"] = "hexasubs.cache.DatabaseCache"  # the same, with an atomic incr()
# Several installations may share one Redis: each keeps to its own keys.
CACHES["default"].setdefault("KEY_PREFIX", _read("CACHE_KEY_PREFIX", env.str, "hexasubs"))

# E-mail (password resets): EMAIL_URL such as smtp+tls://user:password@smtp.example.com:587. Without it,
# development prints mails on the console and production offers no password reset rather than
# pretending to send one.
_MAILER_OPTIONS = {
    "host": "EMAIL_HOST",
    "port": "EMAIL_PORT",
    "username": "EMAIL_HOST_USER",
    "password": "EMAIL_HOST_PASSWORD",
    "use_tls": "EMAIL_USE_TLS",
    "use_ssl": "EMAIL_USE_SSL",
    "file_path": "EMAIL_FILE_PATH",
}
if env.str("EMAIL_URL", default=""):
    _email = _read("EMAIL_URL", env.email_url, None)
    MAILERS = {
        "default": {
            "BACKEND": _email["EMAIL_BACKEND"],
            "OPTIONS": {
                option: _email[name] for option, name in _MAILER_OPTIONS.items() if _email.get(name) not in (None, "")
            },
        }
    }
    EMAIL_CONFIGURED = True
elif DEBUG:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
    EMAIL_CONFIGURED = True
else:
    # No mailer at all: nothing can be sent, so nothing pretends to. Deliberate, so not a warning.
    MAILERS = {}
    EMAIL_CONFIGURED = False
    SILENCED_SYSTEM_CHECKS.append("mail.W001")
DEFAULT_FROM_EMAIL = _read("DEFAULT_FROM_EMAIL", env.str, "Hexasubs <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _read("LOG_LEVEL", env.str, "INFO")},
    # httpx logs every webhook request at INFO; the delivery log already records each attempt.
    # axes logs every successful login at INFO; lockouts and failures come at WARNING.
    "loggers": {"httpx": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
