from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.TextChoices):
    SUBSCRIBER_CREATED = "subscriber.created", _("Subscriber created")
    SUBSCRIBER_UPDATED = "subscriber.updated", _("Subscriber profile updated")
    LABELS_CHANGED = "subscriber.labels_changed", _("Subscribers' labels changed")
    SUBSCRIBERS_IMPORTED = "subscribers.imported", _("Subscribers imported (one event per chunk of an import)")
    OPTED_OUT = "subscriber.opted_out", _("Subscriber opted out of promotional messages")
    OPTED_IN = "subscriber.opted_in", _("Subscriber opted back in to promotional messages")


class EndpointQuerySet(models.QuerySet):
    def listening_to(self, event: str) -> list["Endpoint"]:
        """Active endpoints subscribed to `event`: one query, filtered here (JSON lookups differ per database)."""
        return [endpoint for endpoint in self.filter(is_active=True) if event in endpoint.events]


class Endpoint(models.Model):
    """A URL of the operator's own systems that receives signed event notifications."""

    url = models.URLField(_("URL"), max_length=1000, validators=[URLValidator(schemes=["http", "https"])])
    description = models.CharField(_("description"), max_length=200, blank=True)
    secret = models.CharField(
        _("signing secret"),
        max_length=200,
        help_text=_("Shared with the receiver, which uses it to check the X-Hexasubs-Signature header."),
    )
    events = models.JSONField(_("events"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["url", "pk"]

    def __str__(self):
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Failed")
    # The endpoint was inactive when the delivery's turn came: nothing was sent. Staff may retry it.
    CANCELLED = "cancelled", _("Not sent: endpoint inactive")


class Delivery(models.Model):
    """One event sent to one endpoint, with its retry state: the delivery log staff read in the admin."""

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.CharField(_("event"), max_length=50, choices=Event.choices)
    # The exact bytes signed and sent; kept as text so every retry sends the same body.
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    response_status = models.PositiveIntegerField(_("last response status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # Set while a worker sends the delivery, cleared when the attempt is recorded: a value older than
    # webhooks.tasks.stale_after() means the worker died mid-send, and the sweep queues the delivery again.
    attempt_started_at = models.DateTimeField(_("attempt started"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_status_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
        ]

    def __str__(self):
        return f"{self.event} → {self.endpoint}"
