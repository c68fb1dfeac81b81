from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Length, Lower
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from labels.names import (
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    TITLE_REFUSED_PATTERN,
    name_from_title,
    normalise_title,
    unique_name,
)

TITLE_MAX_LENGTH = 100
# One limit for the dialog, the admin and the API, and a CHECK constraint in the database.
DESCRIPTION_MAX_LENGTH = 2000


class Color(models.TextChoices):
    """The chip palette; each value has a matching `label-chip--<value>` CSS class."""

    BLUE = "blue", _("Blue")
    INDIGO = "indigo", _("Indigo")
    PURPLE = "purple", _("Purple")
    PINK = "pink", _("Pink")
    RED = "red", _("Red")
    ORANGE = "orange", _("Orange")
    YELLOW = "yellow", _("Yellow")
    GREEN = "green", _("Green")
    TEAL = "teal", _("Teal")
    GRAY = "gray", _("Grey")  # British English, as "colour"


class NamedQuerySet(models.QuerySet):
    """Labels and label groups make their unique names from their titles the same way."""

    def free_name(self, title_or_name: str, exclude_pk=None) -> str:
        """The name generated from `title_or_name`, made unique against stored labels."""
        name = name_from_title(title_or_name)
        others = self.exclude(pk=exclude_pk) if exclude_pk else self.all()
        stem = name[: NAME_MAX_LENGTH - 16]
        taken = set(others.filter(name__startswith=stem).values_list("name", flat=True))
        return unique_name(name, taken)


class LabelQuerySet(NamedQuerySet):
    def with_subscriber_counts(self):
        """Annotate `subscriber_count` with one grouped query over the assignments."""
        return self.annotate(subscriber_count=models.Count("assignments"))


class LabelGroup(models.Model):
    """Labels that belong together ("Plan: free / pro / enterprise").

    When `exclusive`, a subscriber carries at most one label of the group: giving
    them one takes the group's others away, on every path (subscribers.actions).
    """

    title = models.CharField(_("title"), max_length=TITLE_MAX_LENGTH)
    name = models.CharField(
        _("name"),
        max_length=NAME_MAX_LENGTH,
        unique=True,
        help_text=_("Used by integrations and conversation flows: lowercase letters, digits and _."),
        error_messages={"unique": _("A label group with this name already exists.")},
    )
    description = models.TextField(
        _("description"),
        blank=True,
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)],
    )
    exclusive = models.BooleanField(
        _("exclusive"),
        default=False,
        help_text=_("A subscriber carries at most one label of the group: giving one takes the others away."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = NamedQuerySet.as_manager()

    class Meta:
        verbose_name = _("label group")
        verbose_name_plural = _("label groups")
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(
                Lower("title"),
                name="label_group_title_unique_ignoring_case",
                violation_error_message=_("A label group with this title already exists."),
            ),
            models.CheckConstraint(
                condition=models.Q(name__regex=NAME_PATTERN),
                name="label_group_name_format",
                violation_error_message=_("The name may only contain lowercase letters, digits and _."),
            ),
            models.CheckConstraint(
                condition=~models.Q(title__regex=TITLE_REFUSED_PATTERN),
                name="label_group_title_normalised",
                violation_error_message=_("The title may not contain invisible or control characters."),
            ),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        self.title = normalise_title(self.title)
        super().save(*args, **kwargs)


class Label(models.Model):
    title = models.CharField(_("title"), max_length=TITLE_MAX_LENGTH)
    name = models.CharField(
        _("name"),
        max_length=NAME_MAX_LENGTH,
        unique=True,
        help_text=_("Used by integrations and conversation flows: lowercase letters, digits and _."),
        error_messages={"unique": _("A label with this name already exists.")},
    )
    description = models.TextField(
        _("description"),
        blank=True,
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)],
    )
    color = models.CharField(_("colour"), max_length=16, choices=Color.choices, blank=True)
    group = models.ForeignKey(
        LabelGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="labels",
        verbose_name=_("group"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LabelQuerySet.as_manager()

    class Meta:
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        ordering = ["title", "pk"]
        constraints = [
            models.UniqueConstraint(
                Lower("title"),
                name="label_title_unique_ignoring_case",
                violation_error_message=_("A label with this title already exists."),
            ),
            models.CheckConstraint(
                condition=models.Q(name__regex=NAME_PATTERN),
                name="label_name_format",
                violation_error_message=_("The name may only contain lowercase letters, digits and _."),
            ),
            models.CheckConstraint(
                condition=models.Q(color__in=[*Color.values, ""]),
                name="label_color_in_palette",
            ),
            models.CheckConstraint(
                condition=~models.Q(title__regex=TITLE_REFUSED_PATTERN),
                name="label_title_normalised",
                violation_error_message=_("The title may not contain invisible or control characters."),
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("description"), DESCRIPTION_MAX_LENGTH),
                name="label_description_length",
                violation_error_message=_("The description is too long."),
            ),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        # Every path that saves a label (dialog, admin, API, scripts) stores the normalised title.
        self.title = normalise_title(self.title)
        super().save(*args, **kwargs)

    def clean(self):
        # Before the uniqueness check, so a title that only looks like another is refused as a duplicate.
        typed, self.title = self.title, normalise_title(self.title)
        if typed and not self.title:  # an empty one is refused as required by clean_fields()
            raise ValidationError({"title": _("Write a title with visible letters, digits or symbols.")})

    @property
    def chip_class(self) -> str:
        return f"label-chip label-chip--{self.color or 'gray'}"
