from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import models
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from hexasubs.quotes import quoted
from labels.models import Label
from subscribers.search import SEARCH_NAME_LENGTH, search_name
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
        # The standard channels' titles are translated (migration 0002 marks them); others show as typed.
        return gettext(self.title)


NAME_FIELDS = {"first_name", "last_name"}


class SubscriberQuerySet(models.QuerySet):
    """Keeps `search_name` right on the ORM's bulk paths, which skip `Subscriber.save()`."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for subscriber in objs:
            subscriber.search_name = search_name(subscriber.first_name, subscriber.last_name)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        if NAME_FIELDS & set(fields):
            for subscriber in objs:
                subscriber.search_name = search_name(subscriber.first_name, subscriber.last_name)
            fields = [*fields, "search_name"]
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update(self, **kwargs):
        # The folded name cannot be computed in SQL (it is Python: anyascii), so a name set here without it
        # would leave the search blind to the new name: go through save() or subscribers.actions instead.
        if NAME_FIELDS & kwargs.keys() and "search_name" not in kwargs:
            raise TypeError("Setting first_name or last_name with update() needs search_name=search_name(…) too.")
        return super().update(**kwargs)


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
    # The name as the search compares it (subscribers.search.search_name): kept by every write of a name.
    search_name = models.CharField(
        _("search name"), max_length=SEARCH_NAME_LENGTH, blank=True, default="", db_default="", editable=False
    )
    # Set explicitly by the code that writes subscribers: `updated_at` is the profile's date (the
    # guide's "Mis à jour le"): it moves when the name, gender, locale, time zone, country or avatar
    # really change, never on a mere visit and never for a label change (those have their history).
    created_at = models.DateTimeField(_("created"), default=now)
    updated_at = models.DateTimeField(_("updated"), default=now)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    # Not part of the profile (it does not move `updated_at`): set by subscribers.actions.set_opt_out, from the
    # bot API when the person says STOP, or by an operator. Broadcasts never send to an opted-out person.
    opted_out_at = models.DateTimeField(_("opted out of promotional messages"), null=True, blank=True)
    labels = models.ManyToManyField(
        Label, through="SubscriberLabel", related_name="subscribers", blank=True, verbose_name=_("labels")
    )

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("change_subscriber_labels", _("Can change the labels of subscribers")),
            # Not given to Operators: an import creates and rewrites subscribers by the million.
            ("import_subscribers", _("Can import subscribers")),
            ("change_subscriber_opt_out", _("Can opt subscribers out of promotional messages, and back in")),
        ]
        constraints = [
            # foreign_id first: the same index also finds a foreign id on any channel (the search box does).
            models.UniqueConstraint(fields=["foreign_id", "channel"], name="subscriber_unique_per_channel"),
            models.CheckConstraint(condition=models.Q(gender__in=[*Gender.values, ""]), name="subscriber_gender_valid"),
        ]
        # One index per sortable column, each ending with the primary key as tie-breaker, and no more:
        # each costs every profile write an index insert.
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

    def save(self, *args, update_fields=None, **kwargs):
        # Whatever saves a subscriber (the actions, the admin's edit form, a test) keeps the search right;
        # SubscriberQuerySet covers the ORM's bulk paths, and raw SQL (the API's upsert, the CSV import's
        # merge, bench/load.py) writes `search_name` itself.
        self.search_name = search_name(self.first_name, self.last_name)
        if update_fields is not None and NAME_FIELDS & set(update_fields):
            update_fields = {*update_fields, "search_name"}
        super().save(*args, update_fields=update_fields, **kwargs)

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
    COMMAND = "command", _("Command line")
    UNDO = "undo", _("Undo")
    LABEL_DELETED = "label_deleted", _("Label deleted")
    # Taken away because a label of the same exclusive group was given (labels.LabelGroup.exclusive).
    EXCLUSIVE_GROUP = "exclusive_group", _("Another label of its exclusive group given")


class LabelOperation(models.Model):
    """One bulk label change, run in chunks: what it does, to whom, how far it got and what it changed.

    The selection is frozen when it starts: the filter (or the ticked ids) plus
    `id <= max_subscriber_id`. Chunks walk it in id order, each in its own short
    transaction that also advances `last_subscriber_id` and the counts, so a
    worker that dies loses nothing and the next one resumes where it stopped.
    An undo walks the members of the operation it undoes instead of a filter.
    """

    class Kind(models.TextChoices):
        ADD = "add", _("Add labels")
        REMOVE = "remove", _("Remove labels")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    FINISHED = (Status.DONE, Status.CANCELLED, Status.FAILED)

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=20, choices=LabelSource.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    labels = models.ManyToManyField(Label, related_name="+", verbose_name=_("labels"))
    label_names = models.JSONField(_("label names"), default=list, help_text=_("As they were when it ran."))
    filters = models.JSONField(_("selection"), default=dict, blank=True)
    undoes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="undone_by", verbose_name=_("undoes")
    )
    delete_label = models.ForeignKey(
        Label,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("then delete the label"),
        help_text=_("Set when the operation takes a label away from everyone before deleting it."),
    )
    total_count = models.PositiveIntegerField(
        _("subscribers to go through"), null=True, blank=True, help_text=_("Counted when it started.")
    )
    max_subscriber_id = models.BigIntegerField(_("last subscriber id in the selection"), null=True, blank=True)
    last_subscriber_id = models.BigIntegerField(_("done up to subscriber id"), default=0)
    selected_count = models.PositiveIntegerField(_("selected subscribers"), default=0)
    changed_count = models.PositiveIntegerField(_("assignments changed"), default=0)
    changed_subscribers = models.PositiveIntegerField(_("subscribers changed"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
    )
    created_at = models.DateTimeField(_("requested"), default=now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    # Moved by every chunk; the sweep resumes an unfinished operation whose heartbeat stopped.
    heartbeat_at = models.DateTimeField(_("last sign of life"), default=now)

    class Meta:
        verbose_name = _("bulk label operation")
        verbose_name_plural = _("bulk label operations")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="label_operation_recent"),
            models.Index(fields=["finished_at", "id"], name="label_operation_finished"),
            models.Index(
                fields=["heartbeat_at"],
                name="label_operation_unfinished",
                condition=models.Q(status__in=["pending", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "running", "done", "cancelled", "failed"]),
                name="label_operation_status_valid",
            ),
        ]

    def __str__(self):
        return _("Bulk change #%(number)s") % {"number": self.pk}

    def get_absolute_url(self):
        return reverse("subscribers:operation", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def can_undo(self) -> bool:
        """Finished with changes, not yet undone, and every label still there to give back or take away.

        Reads `undone_by` and `labels`: select and prefetch them on lists.
        """
        if not self.is_finished or not self.changed_count:
            return False
        if self.max_subscriber_id is None:
            return False  # Run before operations recorded their members: nothing to reverse from.
        if self.delete_label_id is not None or len(self.labels.all()) < len(self.label_names):
            return False
        try:
            self.undone_by  # noqa: B018 - the reverse one-to-one raises when there is no undo
        except LabelOperation.DoesNotExist:
            return True
        return False

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total_count:
            return 0
        return min(100, self.selected_count * 100 // self.total_count)

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def quoted_labels(self) -> str:
        """The labels' titles, or the stored names of labels deleted since."""
        return quoted([label.title for label in self.labels.all()] or self.label_names)

    def summary(self) -> str:
        """What the operation did, in the words shown to the operator."""
        changed, selected = self.changed_count, self.selected_count
        params = {"labels": self.quoted_labels, "changed": intcomma(changed), "selected": intcomma(selected)}
        if self.status == self.Status.CANCELLED:
            prefix = (
                ngettext(
                    "Cancelled after %(selected)s subscriber.", "Cancelled after %(selected)s subscribers.", selected
                )
                % params
                + " "
            )
        else:
            prefix = ""
        if len(self.label_names) == 1:
            # Two counts, each with its own plural: "added to 2,000 subscribers (0 already had it)".
            unchanged = selected - changed
            if self.kind == self.Kind.ADD:
                change = ngettext(
                    "Added %(labels)s to %(changed)s subscriber", "Added %(labels)s to %(changed)s subscribers", changed
                )
                note = ngettext("%(unchanged)s already had it", "%(unchanged)s already had it", unchanged)
            else:
                change = ngettext(
                    "Removed %(labels)s from %(changed)s subscriber",
                    "Removed %(labels)s from %(changed)s subscribers",
                    changed,
                )
                note = ngettext("%(unchanged)s did not have it", "%(unchanged)s did not have it", unchanged)
            params["change"] = change % params
            params["note"] = note % {"unchanged": intcomma(unchanged)}
            text = _("%(change)s (%(note)s).")
        elif self.kind == self.Kind.ADD:
            text = ngettext(
                "Added %(labels)s: %(changed)s new assignment on %(selected)s selected subscribers.",
                "Added %(labels)s: %(changed)s new assignments on %(selected)s selected subscribers.",
                changed,
            )
        else:
            text = ngettext(
                "Removed %(labels)s: %(changed)s assignment removed from %(selected)s selected subscribers.",
                "Removed %(labels)s: %(changed)s assignments removed from %(selected)s selected subscribers.",
                changed,
            )
        return prefix + text % params


class LabelOperationMember(models.Model):
    """One label one operation added to or removed from one subscriber: exactly what an undo reverses.

    Narrow on purpose: a bulk change writes one row here per assignment it
    changed, beside the assignment itself, and nothing else. No foreign-key
    constraints: PostgreSQL checks them at COMMIT, one lookup of the operation,
    the subscriber and the label per row (at 500,000 rows that was 15 s of the
    change's time), and the history must outlive a deleted subscriber or label
    anyway. The operation's deletion cascades in Django; rows of deleted
    subscribers are harmless and skipped by the readers' joins.
    """

    pk = models.CompositePrimaryKey("operation", "subscriber", "label")
    # No index of their own: the primary key finds an operation's members, label_operation_member_by_sub a
    # subscriber's, and nothing looks members up by label. Each index cost every bulk change and import
    # about a tenth of its time (two of five indexes written per member were these three's).
    operation = models.ForeignKey(
        LabelOperation, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="members"
    )
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    label = models.ForeignKey(Label, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")

    class Meta:
        verbose_name = _("bulk change member")
        verbose_name_plural = _("bulk change members")
        # The detail page's history reads a subscriber's bulk changes.
        indexes = [models.Index(fields=["subscriber", "operation"], name="label_operation_member_by_sub")]

    def __str__(self):
        return f"{self.operation_id}: {self.subscriber_id} {self.label_id}"


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
            # The API's feed of label changes reads them in this order.
            models.Index(fields=["changed_at", "id"], name="label_change_feed"),
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


# --- Imports --------------------------------------------------------------------------------------


class SubscriberImport(models.Model):
    """One CSV file imported into the subscribers: its settings, how far it got and what it did.

    It runs like a bulk label change, in short transactions that each record their
    progress: first *checking* reads a chunk of rows of the stored file (from the byte
    `read_offset`) into the staging table `SubscriberImportRow`, rejected rows into
    `SubscriberImportProblem`; then *importing* applies a chunk of staged rows (after
    `merged_row`) to the subscribers with set-based statements. A worker that dies
    loses nothing and the sweep resumes it. A dry run checks and counts, and writes
    nothing to subscribers or labels.
    """

    class Mode(models.TextChoices):
        UPSERT = "upsert", _("Create new subscribers and update existing ones")
        CREATE = "create", _("Create new subscribers only")
        LABELS_ADD = "labels_add", _("Only add the file's labels to existing subscribers")
        LABELS_REMOVE = "labels_remove", _("Only remove the file's labels from existing subscribers")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Not started")
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    class Stage(models.TextChoices):
        READING = "reading", _("Checking rows")
        MERGING = "merging", _("Importing rows")

    FINISHED = (Status.DONE, Status.CANCELLED, Status.FAILED)
    UNFINISHED = (Status.PENDING, Status.RUNNING)

    file_name = models.CharField(_("stored file"), max_length=255, help_text=_("In the IMPORT_DIR folder."))
    original_name = models.CharField(_("file"), max_length=255)
    size = models.BigIntegerField(_("size in bytes"), default=0)
    estimated_rows = models.PositiveIntegerField(_("rows, estimated from the lines"), default=0)
    delimiter = models.CharField(_("separator"), max_length=1, default=",")
    header = models.JSONField(_("columns of the file"), default=list)
    data_offset = models.BigIntegerField(_("first row at byte"), default=0)
    mapping = models.JSONField(_("column mapping"), default=list, help_text=_("The field each column fills, or ''."))
    mode = models.CharField(_("mode"), max_length=20, choices=Mode.choices, default=Mode.UPSERT)
    replace_labels = models.BooleanField(_("labels replace the subscriber's labels"), default=False)
    create_labels = models.BooleanField(_("create unknown labels"), default=False)
    channel = models.ForeignKey(
        Channel,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("channel of every row"),
        help_text=_("When the file has no channel column."),
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    language = models.CharField(_("language of the report"), max_length=10, default="en")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    stage = models.CharField(_("stage"), max_length=10, choices=Stage.choices, default=Stage.READING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
    )
    created_at = models.DateTimeField(_("uploaded"), default=now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last sign of life"), default=now)
    # Progress: checking reads from `read_offset`; importing goes on after `merged_row`.
    read_offset = models.BigIntegerField(_("checked up to byte"), default=0)
    rows_read = models.PositiveIntegerField(_("rows checked"), default=0)
    last_row = models.PositiveIntegerField(_("last row number read"), default=1)
    staged_count = models.PositiveIntegerField(_("rows to import"), default=0)
    merged_row = models.PositiveIntegerField(_("imported up to row"), default=0)
    rows_merged = models.PositiveIntegerField(_("rows imported"), default=0)
    # What it did (or, for a dry run, would do).
    created_count = models.PositiveIntegerField(_("subscribers created"), default=0)
    updated_count = models.PositiveIntegerField(_("subscribers updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("rows that changed nothing"), default=0)
    rejected_count = models.PositiveIntegerField(_("rows rejected"), default=0)
    duplicate_count = models.PositiveIntegerField(_("rows repeated later in the file"), default=0)
    labels_added = models.PositiveIntegerField(_("labels added"), default=0)
    labels_removed = models.PositiveIntegerField(_("labels removed"), default=0)
    new_labels = models.JSONField(_("labels created"), default=list, blank=True)
    add_operation = models.ForeignKey(
        LabelOperation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("labels added"),
    )
    remove_operation = models.ForeignKey(
        LabelOperation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("labels removed"),
    )
    staging_cleared = models.BooleanField(_("staged rows deleted"), default=False)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("subscriber import")
        verbose_name_plural = _("subscriber imports")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="subscriber_import_recent"),
            models.Index(
                fields=["heartbeat_at"],
                name="subscriber_import_unfinished",
                condition=models.Q(status__in=["pending", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "pending", "running", "done", "cancelled", "failed"]),
                name="subscriber_import_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(mode__in=["upsert", "create", "labels_add", "labels_remove"]),
                name="subscriber_import_mode_valid",
            ),
            # One import at a time per operator (commands run with no operator, and are not limited).
            models.UniqueConstraint(
                fields=["created_by"],
                condition=models.Q(status__in=["pending", "running"]),
                name="subscriber_import_one_at_a_time",
                violation_error_message=_("You are already running an import: wait for it to end, or cancel it."),
            ),
        ]

    def __str__(self):
        return _("Import #%(number)s") % {"number": self.pk}

    def get_absolute_url(self):
        return reverse("subscribers:import_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def fields(self) -> list[str]:
        """The subscriber fields the file fills, in the file's column order."""
        return [field for field in self.mapping if field]

    @property
    def has_labels(self) -> bool:
        return "labels" in self.mapping

    @property
    def ignored_columns(self) -> list[str]:
        """The file's columns that fill nothing: reported, not read."""
        return [title for title, field in zip(self.header, self.mapping, strict=False) if not field]

    @property
    def changed_nothing(self) -> bool:
        return not (self.created_count or self.updated_count or self.labels_added or self.labels_removed)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if self.stage == self.Stage.READING:
            done, total = self.rows_read, max(self.estimated_rows, self.rows_read, 1)
        else:
            done, total = self.rows_merged, max(self.staged_count, 1)
        return min(100, done * 100 // total)

    def summary(self) -> str:
        """What the import did (or a dry run would do), in the words shown to the operator."""
        cancelled = self.status == self.Status.CANCELLED
        if cancelled and self.stage == self.Stage.READING:
            # Stopped while checking: no row reached the subscribers, whatever the rows held.
            return ngettext(
                "Cancelled while checking, after %(rows)s row: nothing was imported.",
                "Cancelled while checking, after %(rows)s rows: nothing was imported.",
                self.rows_read,
            ) % {"rows": intcomma(self.rows_read)}
        considered = self.rows_read - self.rejected_count - self.duplicate_count
        if cancelled:
            considered = self.rows_merged
        if self.changed_nothing:
            if self.dry_run:
                text = ngettext(
                    "Nothing would change: the %(rows)s row matches the subscribers as they are.",
                    "Nothing would change: the %(rows)s rows match the subscribers as they are.",
                    considered,
                )
            else:
                text = ngettext(
                    "Nothing changed: the %(rows)s row matches the subscribers as they are.",
                    "Nothing changed: the %(rows)s rows match the subscribers as they are.",
                    considered,
                )
            parts = [text % {"rows": intcomma(considered)}]
        else:
            # Each count with its own plural ("1 abonné créé, 0 modifié, 2 laissés tels quels").
            created, updated, unchanged = self.created_count, self.updated_count, self.unchanged_count
            if self.dry_run:
                counts = {
                    "created": (
                        ngettext("Would create %(n)s subscriber", "Would create %(n)s subscribers", created),
                        created,
                    ),
                    "updated": (ngettext("change %(n)s", "change %(n)s", updated), updated),
                    "unchanged": (ngettext("leave %(n)s as it is", "leave %(n)s as they are", unchanged), unchanged),
                }
            else:
                counts = {
                    "created": (ngettext("Created %(n)s subscriber", "Created %(n)s subscribers", created), created),
                    "updated": (ngettext("changed %(n)s", "changed %(n)s", updated), updated),
                    "unchanged": (ngettext("left %(n)s as it was", "left %(n)s as they were", unchanged), unchanged),
                }
            parts = [_("%(created)s, %(updated)s, %(unchanged)s.") % _numbered(counts)]
            if self.labels_added or self.labels_removed:
                added, removed = self.labels_added, self.labels_removed
                if self.dry_run:
                    adding = ngettext("%(n)s would be added", "%(n)s would be added", added)
                else:
                    adding = ngettext("%(n)s added", "%(n)s added", added)
                labels = {
                    "added": (adding, added),
                    "removed": (ngettext("%(n)s removed", "%(n)s removed", removed), removed),
                }
                parts.append(_("Labels: %(added)s, %(removed)s.") % _numbered(labels))
        if self.rejected_count:
            parts.append(
                ngettext("%(rejected)s row rejected.", "%(rejected)s rows rejected.", self.rejected_count)
                % {"rejected": intcomma(self.rejected_count)}
            )
        if self.duplicate_count:
            parts.append(
                ngettext(
                    "%(repeated)s row was repeated further down the file: the later one was used.",
                    "%(repeated)s rows were repeated further down the file: the later ones were used.",
                    self.duplicate_count,
                )
                % {"repeated": intcomma(self.duplicate_count)}
            )
        if cancelled:  # while importing: how far it got, then what those rows did
            stopped = ngettext(
                "Cancelled: %(merged)s of %(total)s rows imported.",
                "Cancelled: %(merged)s of %(total)s rows imported.",
                self.rows_merged,
            )
            parts.insert(0, stopped % {"merged": intcomma(self.rows_merged), "total": intcomma(self.staged_count)})
        return " ".join(parts)


def _numbered(counts: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Each (text in the number's plural form, number) as the text with its number written in: `%(n)s`."""
    return {name: text % {"n": intcomma(number)} for name, (text, number) in counts.items()}


class SubscriberImportRow(models.Model):
    """One checked row of an import, waiting to be applied: the staging table of the set-based merge.

    Deleted when the import ends. No foreign-key constraints: the rows are written
    by the hundred thousand (COPY on PostgreSQL) and read back by the import alone.
    """

    pk = models.CompositePrimaryKey("job", "row")
    # The primary key (job, row) is the index: a second one on the job alone tempted the planner into reading
    # every staged row of the import for each chunk (a chunk is a range of rows).
    job = models.ForeignKey(
        SubscriberImport, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    # ROW and OFFSET are SQL keywords: the set-based statements name the columns file_row and file_offset.
    row = models.PositiveIntegerField(db_column="file_row")
    offset = models.BigIntegerField(db_column="file_offset")
    channel = models.ForeignKey(
        Channel, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    foreign_id = models.CharField(max_length=255)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    gender = models.CharField(max_length=10, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=2, blank=True)
    # subscribers.search.search_name of the row's first and last names, computed while checking the row.
    search_name = models.CharField(max_length=SEARCH_NAME_LENGTH, blank=True)
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    last_seen_at = models.DateTimeField(null=True)
    # The ids of the row's labels (a JSON array), or null when the file has no labels column.
    labels = models.JSONField(null=True)

    class Meta:
        verbose_name = _("staged import row")
        verbose_name_plural = _("staged import rows")

    def __str__(self):
        return f"{self.job_id}: {self.row}"


class SubscriberImportProblem(models.Model):
    """A row an import rejected (with the column and the reason), or skipped because a later row repeats it.

    `offset` is where the row starts in the stored file: the rejected-rows CSV
    copies the rows from there, exactly as they were written.
    """

    class Kind(models.TextChoices):
        REJECTED = "rejected", _("Rejected")
        DUPLICATE = "duplicate", _("Repeated later in the file")

    pk = models.CompositePrimaryKey("job", "row")
    job = models.ForeignKey(  # the primary key (job, row) is its index
        SubscriberImport, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="problems"
    )
    row = models.PositiveIntegerField(_("row"), db_column="file_row")
    offset = models.BigIntegerField(db_column="file_offset")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.REJECTED)
    columns = models.CharField(_("columns"), max_length=500, blank=True)
    reason = models.TextField(_("reason"))

    class Meta:
        verbose_name = _("import problem")
        verbose_name_plural = _("import problems")

    def __str__(self):
        return f"{self.job_id}: {self.row} {self.reason}"
