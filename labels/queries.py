"""Reads for the Labels page.

The assignments live in the subscribers app, which depends on this one; they are
reached through the reverse relation `Label.assignments`, never by importing it.
"""

from collections.abc import Iterable

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from labels.models import Label


def _assignments():
    return Label._meta.get_field("assignments").related_model.objects.order_by()


def subscriber_counts(label_ids: Iterable[int]) -> dict[int, int]:
    """How many subscribers carry each label: one grouped query over the assignments of these labels only."""
    rows = (
        _assignments()
        .filter(label_id__in=list(label_ids))
        .values("label_id")
        .annotate(count=Count("*"))
        .values_list("label_id", "count")
    )
    return dict(rows)


def with_subscriber_count(labels: QuerySet) -> QuerySet:
    """Annotate `subscriber_count` for sorting on it.

    A correlated subquery rather than JOIN + GROUP BY, so that the paginator's
    COUNT drops it and stays a plain count of labels.
    """
    count = _assignments().filter(label=OuterRef("pk")).values("label").annotate(n=Count("*")).values("n")
    return labels.annotate(subscriber_count=Coalesce(Subquery(count), 0))
