"""Background delivery of webhook events, with retries and exponential backoff."""

import logging
import urllib.error
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from webhooks.models import Delivery, DeliveryStatus
from webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10
MAX_DELAY = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min… after the 1st, 2nd, 3rd failed attempt, capped at 6 hours."""
    base = getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 30)
    return min(timedelta(seconds=base * 2 ** (attempts - 1)), MAX_DELAY)


def _post(delivery: Delivery) -> tuple[int | None, str]:
    """POST the signed body; return (HTTP status or None, error text or "")."""
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Hexasubs-Webhooks/1",
        "X-Hexasubs-Event": delivery.event,
        "X-Hexasubs-Delivery": str(delivery.pk),
        **signed_headers(delivery.endpoint.secret, body),
    }
    request = urllib.request.Request(delivery.endpoint.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc)) or exc.__class__.__name__


@task
def deliver(delivery_id: int) -> str:
    """Send one delivery; on failure, schedule the next attempt or give up after MAX_ATTEMPTS."""
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return "skipped"
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
    delivery.save(
        update_fields=["attempts", "response_status", "status", "delivered_at", "next_attempt_at", "last_error"]
    )
    if delivery.status == DeliveryStatus.PENDING:
        deliver.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
    else:
        logger.info("Webhook delivery %s %s after %s attempt(s)", delivery.pk, delivery.status, delivery.attempts)
    return delivery.status
