"""Reads for the broadcast pages: who an audience reaches and why not, the report, a subscriber's broadcasts."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.utils import timezone

from broadcasts.models import Broadcast, Delivery, DeliveryReason, DeliveryStatus
from subscribers.models import ChannelKind, Subscriber
from subscribers.queries import subscribers_matching

# What will happen to each subscriber of an audience, in the order the reasons are checked.
WILL_SEND = ""
OUTCOMES = [
    WILL_SEND,
    DeliveryReason.CHANNEL_INACTIVE,
    DeliveryReason.OPTED_OUT,
    DeliveryReason.OUTSIDE_WINDOW,
    DeliveryReason.FREQUENCY_CAP,
]
SAMPLES = 5
# The statuses a delivery has a reason for (the report groups them by it).
WITH_REASON = [DeliveryStatus.SKIPPED, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN]
# Deliveries that count against the frequency cap: sent, or perhaps sent.
COUNTED = [DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN]


def window_start(now):
    """Promotional messages on Messenger go only to people whose last message is younger than this."""
    return now - timedelta(hours=settings.BROADCAST_WINDOW_HOURS)


def audience(selection: dict, last_interaction_hours: int | None, *, now=None) -> QuerySet:
    """The subscribers an audience selects: the Subscribers page's filters, and recent interaction if asked.

    Raises ValueError when a stored filter no longer applies (a label deleted since).
    """
    subscribers = subscribers_matching(selection or {"filters": {}})
    if last_interaction_hours:
        now = now or timezone.now()
        subscribers = subscribers.filter(last_seen_at__gte=now - timedelta(hours=last_interaction_hours))
    return subscribers


def outcome(promotional: bool, now, *, exclude_broadcast: int | None = None, within=None) -> Case:
    """The reason a subscriber would be skipped ("" when they will be sent to), as one SQL expression."""
    whens = [
        When(channel__is_active=False, then=Value(DeliveryReason.CHANNEL_INACTIVE.value)),
        When(opted_out_at__isnull=False, then=Value(DeliveryReason.OPTED_OUT.value)),
    ]
    if promotional:
        outside = Q(channel__kind=ChannelKind.MESSENGER) & (
            Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=window_start(now))
        )
        whens.append(When(outside, then=Value(DeliveryReason.OUTSIDE_WINDOW.value)))
        cap = settings.BROADCAST_FREQUENCY_CAP
        if cap:
            # Who is at the cap: computed once (PostgreSQL hashes it), not probed once per subscriber.
            since = now - timedelta(hours=24)
            recent = Delivery.objects.filter(claimed_at__gte=since, status__in=COUNTED, broadcast__message_tag="")
            if exclude_broadcast is not None:
                recent = recent.exclude(broadcast_id=exclude_broadcast)
            if within is not None:  # a freezing chunk's (low, high] ids: only their deliveries are read
                recent = recent.filter(subscriber_id__gt=within[0], subscriber_id__lte=within[1])
            capped = recent.order_by().values("subscriber_id").annotate(n=Count("*")).filter(n__gte=cap)
            whens.append(When(pk__in=capped.values("subscriber_id"), then=Value(DeliveryReason.FREQUENCY_CAP.value)))
    return Case(*whens, default=Value(WILL_SEND))


def with_outcome(subscribers: QuerySet, promotional: bool, now, *, exclude_broadcast=None, within=None) -> QuerySet:
    """`subscribers` annotated with `outcome`: the reason they would be skipped, or ""."""
    expression = outcome(promotional, now, exclude_broadcast=exclude_broadcast, within=within)
    return subscribers.annotate(outcome=expression)


@dataclass(frozen=True)
class AudienceCount:
    counts: dict[str, int]
    samples: list

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def will_send(self) -> int:
        return self.counts.get(WILL_SEND, 0)

    @property
    def skipped(self) -> list[tuple[str, int]]:
        """(reason's label, count) of each reason that skips someone, in the order they are checked."""
        reasons = [reason for reason in OUTCOMES[1:] if self.counts.get(reason)]
        return [(DeliveryReason(reason).label, self.counts[reason]) for reason in reasons]


def count_audience(selection: dict, last_interaction_hours, *, promotional: bool, now=None) -> AudienceCount:
    """How many subscribers the audience selects, split by what will happen to them; a few who will get it.

    Two queries: one GROUP BY over the audience, one for the samples.
    """
    now = now or timezone.now()
    subscribers = with_outcome(audience(selection, last_interaction_hours, now=now), promotional, now)
    counts = {row["outcome"]: row["n"] for row in subscribers.order_by().values("outcome").annotate(n=Count("pk"))}
    samples = list(subscribers.filter(outcome=WILL_SEND).select_related("channel").order_by("pk")[:SAMPLES])
    return AudienceCount(counts, samples)


def recipient_ids(spec: dict) -> QuerySet:
    """The subscribers a broadcast's deliveries of one status reach (SELECTION_SOURCES "recipients")."""
    deliveries = Delivery.objects.filter(broadcast_id=int(spec["broadcast"]))
    if spec.get("status"):
        deliveries = deliveries.filter(status=spec["status"])
    return deliveries.values("subscriber_id")


@dataclass(frozen=True)
class ReportLine:
    status: str
    reason: str
    count: int

    @property
    def status_label(self) -> str:
        return DeliveryStatus(self.status).label

    @property
    def reason_label(self) -> str:
        return DeliveryReason(self.reason).label if self.reason else ""


def report_lines(broadcast: Broadcast) -> list[ReportLine]:
    """Counts per status, and per reason for the skipped, failed and unknown; cheap at a million recipients.

    Sent and queued (being sent included) come from the broadcast's counters,
    which move in the same transactions as the deliveries; only the rows that
    have a reason are grouped, over their range of the (broadcast, status,
    reason) index: no scan of the million sent while the broadcast goes out.
    """
    order = {status: index for index, status in enumerate(DeliveryStatus.values)}
    rows = (
        Delivery.objects.filter(broadcast=broadcast, status__in=WITH_REASON)
        .order_by()
        .values("status", "reason")
        .annotate(n=Count("*"))
        .values_list("status", "reason", "n")
    )
    lines = [ReportLine(*row) for row in rows]
    counted = [(DeliveryStatus.SENT, broadcast.sent_count)]
    if broadcast.is_frozen or broadcast.total_count:
        counted.append((DeliveryStatus.QUEUED, broadcast.queued_count))
    lines += [ReportLine(status, "", count) for status, count in counted if count]
    return sorted(lines, key=lambda line: (order.get(line.status, 99), -line.count))


def deliveries_for_report(broadcast: Broadcast) -> QuerySet:
    """The broadcast's deliveries with their subscriber and channel, for the recipient list and its CSV."""
    return Delivery.objects.filter(broadcast=broadcast).select_related("subscriber__channel").order_by("subscriber_id")


def subscriber_broadcasts(subscriber: Subscriber, limit: int) -> QuerySet:
    """The broadcasts a subscriber was in the audience of, newest first: sent, skipped, failed and why."""
    return Delivery.objects.filter(subscriber=subscriber).select_related("broadcast").order_by("-broadcast_id")[:limit]


def recent_broadcasts() -> QuerySet:
    return Broadcast.objects.select_related("created_by")
