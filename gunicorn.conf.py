"""Gunicorn's settings for `make serve` and the load test (bench/loadtest.py).

Each can be set from the environment; a malformed number stops the start.
"""

import os

# Loopback by default: in production a TLS proxy (nginx, Caddy…) sits in front and forwards here.
bind = os.environ.get("BIND", "127.0.0.1:8000")
# Synchronous workers: each serves one request at a time. About two per core; PostgreSQL and Redis
# make them share everything that must be shared (sessions, rate limits, lockouts).
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# A request taking longer than this is killed and its worker restarted: pages answer in well under a
# second, and long work (bulk label changes, webhooks) runs in `manage.py db_worker`.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Workers are replaced now and then, so a slow leak cannot grow for ever.
max_requests = 2000
max_requests_jitter = 200
# Below the proxy's own limits; the API refuses bodies over 64 KB itself.
limit_request_line = 8190
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# The proxy in front is on this machine; it sets X-Forwarded-Proto and X-Forwarded-For.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
