from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from labels.names import NAME_MAX_LENGTH, NAME_PATTERN, name_from_title, unique_name


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
    GRAY = "gray", _("Gray")


class LabelQuerySet(models.QuerySet):
    def with_subscriber_counts(self):
        """Annotate `subscriber_count` with one grouped query over the assignments."""
        return self.annotate(subscriber_count=models.Count("assignments"))

    def free_name(self, title_or_name: str, exclude_pk=None) -> str:
        """The name generated from `title_or_name`, made unique against stored labels."""
        name = name_from_title(title_or_name)
        others = self.exclude(pk=exclude_pk) if exclude_pk else self.all()
        stem = name[: NAME_MAX_LENGTH - 16]
        taken = set(others.filter(name__startswith=stem).values_list("name", flat=True))
        return unique_name(name, taken)


class Label(models.Model):
    title = models.CharField(_("title"), max_length=100)
    name = models.CharField(
        _("name"),
        max_length=NAME_MAX_LENGTH,
        unique=True,
        help_text=_("Used by integrations and conversation flows: lowercase letters, digits and _."),
        error_messages={"unique": _("A label with this name already exists.")},
    )
    description = models.TextField(_("description"), blank=True)
    color = models.CharField(_("colour"), max_length=16, choices=Color.choices, blank=True)
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
        ]

    def __str__(self):
        return self.title

    @property
    def chip_class(self) -> str:
        return f"label-chip label-chip--{self.color or 'gray'}"
