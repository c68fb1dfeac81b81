from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from labels.models import Label
from subscribers.validators import validate_locale, validate_timezone


class ChannelKind(models.TextChoices):
    MESSENGER = "messenger", _("Messenger")
    WEBHOOK = "webhook", _("Webhook")
    CONSOLE = "console", _("Console")


class Gender(models.TextChoices):
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")
    OTHER = "other", _("Other")
    __empty__ = _("Not provided")


class Channel(models.Model):
    name = models.SlugField(_("name"), max_length=50, unique=True)
    title = models.CharField(_("title"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    settings = models.JSONField(_("connector settings"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["title", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ChannelKind.values), name="channel_kind_valid"),
        ]

    def __str__(self):
        return self.title


class Subscriber(models.Model):
    # Indexed by the (channel, id) index below, not a second one.
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="subscribers", verbose_name=_("channel"), db_index=False
    )
    foreign_id = models.CharField(_("foreign id"), max_length=255, help_text=_("The person's id on the channel."))
    first_name = models.CharField(_("first name"), max_length=255, blank=True)
    last_name = models.CharField(_("last name"), max_length=255, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)
    locale = models.CharField(_("locale"), max_length=35, blank=True, validators=[validate_locale])
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text=_("As the channel reports it: a UTC offset in hours or a time zone name."),
    )
    country = CountryField(_("country"), blank=True)
    avatar_url = models.URLField(_("avatar URL"), max_length=1000, blank=True)
    # Set explicitly by the code that writes subscribers: `updated_at` moves only when
    # the profile or the labels really change, never on a mere visit.
    created_at = models.DateTimeField(_("created"), default=now)
    updated_at = models.DateTimeField(_("updated"), default=now)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    labels = models.ManyToManyField(
        Label, through="SubscriberLabel", related_name="subscribers", blank=True, verbose_name=_("labels")
    )

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        ordering = ["-created_at", "-pk"]
        permissions = [("change_subscriber_labels", _("Can change the labels of subscribers"))]
        constraints = [
            # foreign_id first: the same index also finds a foreign id on any channel (the search box does).
            models.UniqueConstraint(fields=["foreign_id", "channel"], name="subscriber_unique_per_channel"),
            models.CheckConstraint(condition=models.Q(gender__in=[*Gender.values, ""]), name="subscriber_gender_valid"),
        ]
        # One index per sortable column, each ending with the primary key as tie-breaker, and no more:
        # a bulk label change rewrites updated_at, so each index costs every changed row an index insert.
        indexes = [
            models.Index(fields=["created_at", "id"], name="subscriber_created_idx"),
            models.Index(fields=["updated_at", "id"], name="subscriber_updated_idx"),
            models.Index(fields=["first_name", "last_name", "id"], name="subscriber_first_name_idx"),
            models.Index(fields=["channel", "id"], name="subscriber_channel_idx"),
            models.Index(fields=["locale", "id"], name="subscriber_locale_idx"),
            models.Index(fields=["gender", "id"], name="subscriber_gender_idx"),
        ]

    def __str__(self):
        return self.full_name or self.foreign_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class SubscriberLabel(models.Model):
    # Both keys are covered by the composite unique constraint and index below.
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="label_assignments", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    assigned_at = models.DateTimeField(_("assigned"), default=now)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned by"),
    )

    class Meta:
        verbose_name = _("label assignment")
        verbose_name_plural = _("label assignments")
        constraints = [
            # Also serves "who carries label X" lookups and the Exists filters.
            models.UniqueConstraint(fields=["label", "subscriber"], name="subscriber_label_unique"),
        ]
        indexes = [models.Index(fields=["subscriber", "label"], name="subscriber_label_by_subscriber")]

    def __str__(self):
        return f"{self.subscriber}: {self.label}"


class LabelSource(models.TextChoices):
    """Where a label change came from, as recorded in the history."""

    APP = "app", _("Manage labels dialog")
    BULK = "bulk", _("Bulk action")
    ADMIN = "admin", _("Administration")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    LABEL_DELETED = "label_deleted", _("Label deleted")


class LabelOperation(models.Model):
    """One bulk label change: who ran it, on which filter, with what effect and how long it took."""

    class Kind(models.TextChoices):
        ADD = "add", _("Add labels")
        REMOVE = "remove", _("Remove labels")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=20, choices=LabelSource.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    labels = models.ManyToManyField(Label, related_name="+", verbose_name=_("labels"))
    label_names = models.JSONField(_("label names"), default=list, help_text=_("As they were when it ran."))
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    selected_count = models.PositiveIntegerField(_("selected subscribers"), null=True, blank=True)
    changed_count = models.PositiveIntegerField(_("assignments changed"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("requested"), default=now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("bulk label operation")
        verbose_name_plural = _("bulk label operations")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_kind_display()} {', '.join(self.label_names)}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def quoted_labels(self) -> str:
        """The labels' titles, or the stored names of labels deleted since."""
        titles = [label.title for label in self.labels.all()] or self.label_names
        return ", ".join(f"'{title}'" for title in titles)

    def summary(self) -> str:
        """What the operation did, in the words shown to the operator."""
        changed, selected = self.changed_count or 0, self.selected_count or 0
        params = {"labels": self.quoted_labels, "changed": intcomma(changed), "selected": intcomma(selected)}
        if len(self.label_names) == 1:
            unchanged = intcomma(selected - changed)
            if self.kind == self.Kind.ADD:
                return _("Added %(labels)s to %(changed)s subscribers (%(unchanged)s already had it).") % {
                    **params,
                    "unchanged": unchanged,
                }
            return _("Removed %(labels)s from %(changed)s subscribers (%(unchanged)s did not have it).") % {
                **params,
                "unchanged": unchanged,
            }
        if self.kind == self.Kind.ADD:
            return _("Added %(labels)s: %(changed)s new assignments on %(selected)s selected subscribers.") % params
        return _("Removed %(labels)s: %(changed)s assignments removed from %(selected)s selected subscribers.") % params


class LabelChangeAction(models.TextChoices):
    ADDED = "added", _("Added")
    REMOVED = "removed", _("Removed")


class LabelChange(models.Model):
    """One label added to or removed from one subscriber: the answer to "who labelled this person, and when?"."""

    Action = LabelChangeAction

    # Covered by the (subscriber, changed_at) index below.
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="label_changes", db_index=False)
    # The history outlives a deleted label; its name is kept beside the link.
    label = models.ForeignKey(Label, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False)
    label_name = models.CharField(_("label"), max_length=64)
    action = models.CharField(_("change"), max_length=10, choices=LabelChangeAction.choices)
    source = models.CharField(_("source"), max_length=20, choices=LabelSource.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    changed_at = models.DateTimeField(_("when"))
    operation = models.ForeignKey(
        LabelOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes", db_index=False
    )

    class Meta:
        verbose_name = _("label change")
        verbose_name_plural = _("label changes")
        indexes = [
            models.Index(fields=["subscriber", "changed_at"], name="label_change_by_subscriber"),
            models.Index(fields=["label"], name="label_change_by_label"),
            models.Index(
                fields=["operation"], name="label_change_by_operation", condition=models.Q(operation__isnull=False)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=LabelChangeAction.values), name="label_change_action_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_action_display()} {self.label_name}"


class LabelCount(models.Model):
    """How many subscribers carry a label, kept by the database as assignments come and go.

    The Labels page reads this instead of counting the assignments: counting
    three million of them takes half a second, reading two hundred counts none.
    Triggers (migration 0006) keep it, so no path can forget it: the label
    actions, cascades when a subscriber or a label is deleted, demo data.
    A table of its own, so that label changes do not lock the labels' rows.
    """

    label = models.OneToOneField(
        Label, on_delete=models.CASCADE, primary_key=True, related_name="tally", verbose_name=_("label")
    )
    subscribers = models.PositiveIntegerField(_("subscribers"), default=0)

    class Meta:
        verbose_name = _("label subscriber count")
        verbose_name_plural = _("label subscriber counts")

    def __str__(self):
        return f"{self.label_id}: {self.subscribers}"
