from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from subscribers.models import Channel, Subscriber


class MessageTag(models.TextChoices):
    """Messenger's message tags left in 2026: updates that may go outside the 24-hour window, never offers."""

    CONFIRMED_EVENT_UPDATE = "CONFIRMED_EVENT_UPDATE", _("Confirmed event update")
    POST_PURCHASE_UPDATE = "POST_PURCHASE_UPDATE", _("Post-purchase update")
    ACCOUNT_UPDATE = "ACCOUNT_UPDATE", _("Account update")
    HUMAN_AGENT = "HUMAN_AGENT", _("Human agent")
    __empty__ = _("None: promotional message, inside the 24-hour window only")


class Broadcast(models.Model):
    """One message to an audience of subscribers, from its draft to its delivery report.

    The audience is a stored selection of the Subscribers page's filters
    (`subscribers.queries.subscribers_matching`), plus "last interaction within
    N hours". When sending starts it is frozen: one `Delivery` per recipient,
    written set-based in chunks of subscriber ids (`frozen_up_to` records how far),
    each with what will happen to it (queued, or skipped and why). Workers then
    claim queued deliveries in batches; the counts below move with each batch.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("broadcast", "Draft")
        SCHEDULED = "scheduled", pgettext_lazy("broadcast", "Scheduled")
        SENDING = "sending", pgettext_lazy("broadcast", "Sending")
        PAUSED = "paused", pgettext_lazy("broadcast", "Paused")
        CANCELLED = "cancelled", pgettext_lazy("broadcast", "Cancelled")
        DONE = "done", pgettext_lazy("broadcast", "Done")
        FAILED = "failed", pgettext_lazy("broadcast", "Failed")

    FINISHED = (Status.CANCELLED, Status.DONE, Status.FAILED)

    title = models.CharField(_("title"), max_length=200, help_text=_("For you and your team; recipients never see it."))
    text = models.TextField(_("message"), max_length=2000)
    variants = models.JSONField(_("variants per locale"), default=dict, blank=True)
    quick_replies = models.JSONField(_("quick replies"), default=list, blank=True)
    message_tag = models.CharField(_("message tag"), max_length=30, choices=MessageTag.choices, blank=True, default="")
    audience = models.JSONField(_("audience"), default=dict, blank=True)
    # The audience's segment, if it was chosen as one: its filter is copied into `audience` when sending starts.
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="broadcasts",
        verbose_name=_("segment"),
    )
    last_interaction_hours = models.PositiveIntegerField(_("last interaction within (hours)"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    schedule_timezone = models.CharField(_("time zone of the schedule"), max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("created"), default=now)
    updated_at = models.DateTimeField(_("updated"), default=now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    frozen_at = models.DateTimeField(_("audience frozen"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The freeze walks subscriber ids up to `freeze_max` in chunks; `frozen_up_to` is where it got.
    freeze_max = models.BigIntegerField(_("last subscriber id of the audience"), null=True, blank=True)
    frozen_up_to = models.BigIntegerField(_("frozen up to subscriber id"), default=0)
    total_count = models.PositiveIntegerField(_("recipients"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    sent_count = models.PositiveIntegerField(_("sent"), default=0)
    failed_count = models.PositiveIntegerField(_("failed"), default=0)
    unknown_count = models.PositiveIntegerField(_("unknown"), default=0)
    pause_reason = models.TextField(_("why it paused"), blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("paused or cancelled by"),
    )
    # Moved by every batch; the sweep restarts a sending broadcast whose workers all died.
    heartbeat_at = models.DateTimeField(_("last sign of life"), default=now)

    class Meta:
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        ordering = ["-created_at", "-pk"]
        permissions = [("send_broadcast", _("Can send, schedule, pause, resume and cancel broadcasts"))]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="broadcast_recent"),
            models.Index(
                fields=["heartbeat_at"],
                name="broadcast_unfinished",
                condition=models.Q(status__in=["scheduled", "sending"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["draft", "scheduled", "sending", "paused", "cancelled", "done", "failed"]
                ),
                name="broadcast_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(message_tag__in=["", *MessageTag.values]), name="broadcast_message_tag_valid"
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("broadcasts:detail", args=[self.pk])

    @property
    def is_promotional(self) -> bool:
        return not self.message_tag

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None

    @property
    def queued_count(self) -> int:
        """Frozen recipients not yet sent, failed, skipped or lost (those being sent included)."""
        return max(0, self.total_count - self.skipped_count - self.sent_count - self.failed_count - self.unknown_count)

    @property
    def done_count(self) -> int:
        return self.total_count - self.queued_count

    @property
    def percent(self) -> int:
        if not self.total_count:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, self.done_count * 100 // self.total_count)


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    # Marked before the send, confirmed after: a worker that dies between leaves it here, and the sweep
    # makes it "unknown" (never sent again).
    SENDING = "sending", _("Being sent")
    SENT = "sent", pgettext_lazy("delivery", "Sent")
    FAILED = "failed", pgettext_lazy("delivery", "Failed")
    SKIPPED = "skipped", pgettext_lazy("delivery", "Skipped")
    UNKNOWN = "unknown", _("Unknown")


class DeliveryReason(models.TextChoices):
    """Why a delivery was skipped, failed or ended unknown; shown in the report."""

    OUTSIDE_WINDOW = "outside_window", _("Outside the channel's 24-hour window")
    OPTED_OUT = "opted_out", _("Opted out of promotional messages")
    FREQUENCY_CAP = "frequency_cap", _("Over the frequency cap")
    CHANNEL_INACTIVE = "channel_inactive", _("Channel inactive")
    UNREACHABLE = "unreachable", _("Person unreachable")
    REJECTED = "rejected", _("Refused by the channel")
    RETRIES_EXHAUSTED = "retries_exhausted", _("Temporary errors, retries exhausted")
    WORKER_DIED = "worker_died", _("The worker stopped while sending")
    NO_ANSWER = "no_answer", _("Sent, but the channel did not answer")
    __empty__ = ""


class Delivery(models.Model):
    """One recipient of one broadcast: what happened to their message, and why.

    Written by the million when a broadcast's audience is frozen: no foreign-key
    constraints (PostgreSQL would check each row at COMMIT, a lookup of the
    broadcast and of the subscriber per row); deleting a broadcast deletes its
    deliveries in broadcasts.actions. A deleted subscriber's rows are skipped by
    the readers' joins.
    """

    pk = models.CompositePrimaryKey("broadcast", "subscriber")
    # Both indexed by the primary key (broadcast, subscriber) and delivery_by_subscriber: no index of their own,
    # each would cost the freeze a million index inserts.
    broadcast = models.ForeignKey(
        Broadcast, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="deliveries"
    )
    subscriber = models.ForeignKey(
        Subscriber,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("subscriber"),
    )
    status = models.CharField(_("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    reason = models.CharField(_("reason"), max_length=20, choices=DeliveryReason.choices, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("sending started"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    message_id = models.CharField(_("message id"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        # Read through the broadcast's permissions; and no "view_delivery" beside the webhooks' one.
        default_permissions = ()
        indexes = [
            # Workers claim queued deliveries in subscriber order.
            models.Index(
                fields=["broadcast", "subscriber"], name="delivery_queued", condition=models.Q(status="queued")
            ),
            # The report's counts per reason (of the skipped, failed and unknown), their recipient lists, and the
            # sweep's look, broadcast by broadcast, for deliveries whose worker died between the mark and the
            # confirmation. Partial: the queued and the sent (nearly all of a million) are not in it, so the
            # freeze writes it only for the skipped, and a send only at its mark ("sending").
            models.Index(
                fields=["broadcast", "status", "reason"],
                name="delivery_by_status",
                condition=models.Q(status__in=["sending", "skipped", "failed", "unknown"]),
            ),
            # A subscriber's broadcasts (detail page) and the frequency cap.
            models.Index(fields=["subscriber", "broadcast"], name="delivery_by_subscriber"),
            # The frequency cap, per freezing chunk of subscriber ids: who was sent something lately. Rows are
            # frozen with no claimed_at: it costs the freeze nothing.
            models.Index(
                fields=["subscriber", "claimed_at"],
                name="delivery_recently_claimed",
                condition=models.Q(claimed_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="broadcast_delivery_status_valid"
            ),
        ]

    def __str__(self):
        return f"{self.broadcast_id}: {self.subscriber_id} {self.status}"


class ConsoleMessage(models.Model):
    """A message the console channel ("Live chat tester") delivered: stored and shown in the console."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+", verbose_name=_("to"))
    broadcast = models.ForeignKey(
        Broadcast, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("broadcast")
    )
    text = models.TextField(_("text"))
    quick_replies = models.JSONField(_("quick replies"), default=list, blank=True)
    is_test = models.BooleanField(_("test"), default=False)
    created_at = models.DateTimeField(_("sent"), default=now)

    class Meta:
        verbose_name = _("console message")
        verbose_name_plural = _("console messages")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="console_message_recent"),
            models.Index(fields=["subscriber", "-created_at"], name="console_message_by_subscriber"),
        ]

    def __str__(self):
        return self.text[:50]


class ChannelThrottle(models.Model):
    """The next free send slot of a channel, shared by every worker: the per-channel rate limit.

    A worker reserves n slots with one UPDATE of this row and waits for them
    (broadcasts.actions._reserve_slots), so the limit holds however many
    workers send, on however many machines.
    """

    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, primary_key=True, related_name="+")
    next_slot_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = _("channel send rate")
        verbose_name_plural = _("channel send rates")

    def __str__(self):
        return f"{self.channel_id}: {self.next_slot_at}"
