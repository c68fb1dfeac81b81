from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.http import QueryDict
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from subscribers.filters import SubscriberFilter

# A filter the Subscribers page can carry in its URL fits well within this.
QUERY_MAX = 4000


def normalise_query(params) -> str:
    """The filter part of a Subscribers page query string, in a stable form.

    Only SubscriberFilter's own parameters, in its order, empty values left out,
    label names sorted; "any" as label mode (the default) is left out. Paging and
    sorting are not part of a segment: it says who, not in which order.
    """
    kept = QueryDict(mutable=True)
    for name in SubscriberFilter.base_filters:
        values = [value.strip() for value in params.getlist(name) if value.strip()]
        if name in ("label", "channel"):
            values = sorted(set(values))
        if name.endswith("_mode") and _is_default_mode(name, values, params):
            continue
        if values:
            kept.setlist(name, values)
    return kept.urlencode()


def _is_default_mode(name: str, values: list[str], params) -> bool:
    """A `<filter>_mode` at its default (its first choice), or without its `<filter>`: it changes nothing."""
    default = SubscriberFilter.base_filters[name].extra["choices"][0][0]
    return values == [default] or not params.getlist(name.removesuffix("_mode"))


class Segment(models.Model):
    """A named Subscribers page filter, shared by the team and evaluated whenever it is used.

    `query` is the filter as a normalised query string (`normalise_query`), read
    by the same `SubscriberFilter` as the page; a segment never stores who was in it.
    """

    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=500, blank=True)
    query = models.CharField(_("filter"), max_length=QUERY_MAX, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )
    updated_at = models.DateTimeField(_("updated"), default=now)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = [Lower("name"), "pk"]
        default_permissions = ("view",)
        permissions = [("manage_segment", _("Can save, rename, update and delete segments"))]
        constraints = [models.UniqueConstraint(Lower("name"), name="segment_name_unique")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("segments:open", args=[self.pk])

    def params(self) -> QueryDict:
        """The stored filter as the page's GET parameters."""
        return QueryDict(self.query)

    def filters(self) -> dict[str, list[str]]:
        """The stored filter as a selection's "filters" (subscribers.queries.subscribers_matching)."""
        params = self.params()
        return {name: params.getlist(name) for name in params}
