"""Login throttling with django-axes: who the client is, and what a locked-out person is told."""

from django.conf import settings
from django.shortcuts import render


def client_ip(request) -> str:
    """The address failures are counted against.

    Behind our TLS proxy every request comes from the proxy: the client is the address the proxy
    appended last to X-Forwarded-For (addresses before it are whatever the client claimed).
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")


def locked_out(request, original_response=None, credentials=None):
    """The login page's answer while logins are refused: why, and for how long (429)."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "registration/locked_out.html", context, status=429)
