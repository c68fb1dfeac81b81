"""Background delivery of webhook events, with retries and exponential backoff.

A delivery is sent by whichever worker first claims it (`attempt_started_at`), so a delivery queued
twice (by the sweep, or by staff retrying it) is still sent once per attempt. Redirects are not
followed: an HTTP client that follows a 302 turns the POST into a GET without the body, and the
receiver would be recorded as having had an event it never saw.
"""

import logging
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.tasks import task
from django.utils import timezone
from django.utils.translation import gettext as _

from webhooks.models import Delivery, DeliveryStatus
from webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_DELAY = timedelta(hours=6)
# Explicit timeouts: connecting, each read and each write; a receiver has at most this long per step.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
# How many stale deliveries one sweep takes at a time (one short transaction each).
SWEEP_BATCH = 500


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min… after the 1st, 2nd, 3rd failed attempt, capped at 6 hours."""
    base = getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 30)
    return min(timedelta(seconds=base * 2 ** (attempts - 1)), MAX_DELAY)


def stale_after() -> timedelta:
    """How long a delivery may go without an attempt before the sweep queues it again.

    Far longer than one attempt can take (the timeouts above), so a delivery being sent is never
    taken for a stale one.
    """
    return timedelta(seconds=getattr(settings, "WEBHOOK_STALE_AFTER_SECONDS", 600))


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=CONNECT_TIMEOUT_SECONDS,
        read=READ_TIMEOUT_SECONDS,
        write=READ_TIMEOUT_SECONDS,
        pool=CONNECT_TIMEOUT_SECONDS,
    )


def _post(delivery: Delivery) -> tuple[int | None, str]:
    """POST the signed body once; return (HTTP status or None, error text or "")."""
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hexasubs-Webhooks/1",
        "X-Hexasubs-Event": delivery.event,
        "X-Hexasubs-Delivery": str(delivery.pk),
        **signed_headers(delivery.endpoint.secret, body),
    }
    try:
        response = httpx.post(
            delivery.endpoint.url, content=body, headers=headers, timeout=_timeout(), follow_redirects=False
        )
    except httpx.TimeoutException as exc:
        return None, _("Timed out (%(kind)s).") % {"kind": exc.__class__.__name__}
    except httpx.HTTPError as exc:
        return None, str(exc) or exc.__class__.__name__
    if response.is_redirect:
        return response.status_code, _(
            "HTTP %(status)d: the endpoint redirects to %(location)s. Redirects are not followed: "
            "change the endpoint's URL to the final address."
        ) % {"status": response.status_code, "location": response.headers.get("Location", "?")}
    if not response.is_success:
        return response.status_code, f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return response.status_code, ""


def _claim(delivery_id: int, now) -> bool:
    """Take the delivery for one attempt, unless it is done, not yet due or being sent by another worker."""
    return bool(
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(attempt_started_at__isnull=True) | Q(attempt_started_at__lt=now - stale_after()))
        .update(attempt_started_at=now)
    )


@task
def deliver(delivery_id: int) -> str:
    """Send one delivery; on failure, schedule the next attempt or give up after MAX_ATTEMPTS.

    A delivery whose endpoint has been deactivated is not sent: it is marked cancelled, so
    deactivating an endpoint stops the retries already queued.
    """
    now = timezone.now()
    if not _claim(delivery_id, now):
        return "skipped"
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    fields = ["status", "next_attempt_at", "last_error", "attempt_started_at"]
    delivery.attempt_started_at = None
    if not delivery.endpoint.is_active:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.CANCELLED, None
        delivery.last_error = _("Not sent: the endpoint is inactive.")
        delivery.save(update_fields=fields)
        return delivery.status
    status, error = _post(delivery)
    delivery.attempts += 1
    delivery.response_status = status
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = (
            DeliveryStatus.SUCCEEDED,
            now,
            None,
            "",
        )
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at, delivery.last_error = DeliveryStatus.FAILED, None, error
    else:
        delivery.next_attempt_at, delivery.last_error = now + retry_delay(delivery.attempts), error
    delivery.save(update_fields=[*fields, "attempts", "response_status", "delivered_at"])
    if delivery.status == DeliveryStatus.PENDING:
        deliver.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
    else:
        logger.info("Webhook delivery %s %s after %s attempt(s)", delivery.pk, delivery.status, delivery.attempts)
    return delivery.status


def _stale(now):
    """Pending deliveries of active endpoints that nobody has tried for longer than stale_after().

    Either a worker started an attempt and died (attempt_started_at is old), or no attempt is under
    way and the delivery was due long ago: never queued (the queue was down at commit), or queued
    and lost.
    """
    cutoff = now - stale_after()
    due_long_ago = Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff)
    return Delivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__is_active=True).filter(
        Q(attempt_started_at__lt=cutoff) | (Q(attempt_started_at__isnull=True) & due_long_ago)
    )


def requeue_stale_deliveries(now=None) -> int:
    """Queue again the deliveries stuck pending (see `_stale`); return how many.

    Each is marked as due now, so the next sweep leaves it alone for another stale_after(); several
    workers may sweep at once, and each stale delivery is taken by one of them. Deliveries of
    inactive endpoints stay as they are until the endpoint is active again.
    """
    now = now or timezone.now()
    requeued = 0
    while True:
        with transaction.atomic():
            ids = list(
                _stale(now)
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)[:SWEEP_BATCH]
            )
            Delivery.objects.filter(pk__in=ids).update(attempt_started_at=None, next_attempt_at=now)
        for delivery_id in ids:
            try:
                deliver.enqueue(delivery_id)
            except Exception:
                logger.exception("Could not enqueue webhook delivery %s; the next sweep tries again", delivery_id)
        requeued += len(ids)
        if len(ids) < SWEEP_BATCH:
            break
    if requeued:
        logger.warning("Queued %s stale webhook deliveries again", requeued)
    return requeued
