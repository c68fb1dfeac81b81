"""Reads for the Labels page.

The subscribers app, which depends on this one, keeps each label's subscriber
count in `Label.tally` (subscribers.models.LabelCount); it is reached through that
reverse relation, never by importing the subscribers app.
"""

from collections.abc import Iterable
from typing import NamedTuple

from django.core.cache import cache
from django.db.models import Count, Exists, F, OuterRef, QuerySet
from django.db.models.functions import Coalesce

from labels.exclusive import clashing_sets
from labels.models import Label, LabelGroup


def subscriber_counts(label_ids: Iterable[int]) -> dict[int, int]:
    """How many subscribers carry each label: one query reading the counts the label actions keep.

    Counting the assignments instead took half a second with three million of them.
    """
    rows = Label.objects.filter(pk__in=list(label_ids), tally__isnull=False).values_list("pk", "tally__subscribers")
    return dict(rows)


def with_subscriber_count(labels: QuerySet) -> QuerySet:
    """Annotate `subscriber_count` (the kept count) for sorting on it.

    A LEFT JOIN on one row per label at most, so the paginator's COUNT stays a plain count of labels.
    """
    return labels.annotate(subscriber_count=Coalesce(F("tally__subscribers"), 0))


def _assignments():
    """The subscribers app's assignments (SubscriberLabel), reached through the reverse relation, not an import."""
    return Label._meta.get_field("assignments").related_model.objects


def exclusive_groups_of(label_ids: Iterable[int]) -> dict[int, set[int]]:
    """{group id: ids of all its labels} for each exclusive group one of these labels belongs to: one query."""
    ids = list(label_ids)
    if not ids:
        return {}
    groups: dict[int, set[int]] = {}
    rows = Label.objects.filter(
        group__exclusive=True, group__in=Label.objects.filter(pk__in=ids).values("group_id")
    ).values_list("group_id", "pk")
    for group_id, label_id in rows:
        groups.setdefault(group_id, set()).add(label_id)
    return groups


def exclusive_clashes(labels: Iterable[Label]) -> list[list[Label]]:
    """The labels among these that share an exclusive group, two or more a group (one query when grouped)."""
    by_id = {label.pk: label for label in labels}
    if sum(1 for label in by_id.values() if label.group_id is not None) < 2:
        return []
    clashes = clashing_sets(by_id, exclusive_groups_of(by_id))
    return [sorted((by_id[pk] for pk in ids), key=lambda label: label.title) for ids in clashes]


def carriers_of_several(label_ids: Iterable[int]) -> int:
    """How many subscribers carry two or more of these labels: those an exclusive group would be in conflict with."""
    ids = list(label_ids)
    if len(ids) < 2:
        return 0
    several = _assignments().filter(label_id__in=ids).values("subscriber_id").annotate(n=Count("*")).filter(n__gt=1)
    return several.count()


def carriers_with_group(label: Label, group: LabelGroup) -> int:
    """How many subscribers carry `label` and a label of `group` already (joining an exclusive group would clash)."""
    assignments = _assignments()
    others = assignments.filter(subscriber_id=OuterRef("subscriber_id"), label__group=group).exclude(label=label)
    return assignments.filter(label=label).filter(Exists(others)).count()


class LabelChoice(NamedTuple):
    name: str
    title: str
    chip_class: str


# Where `label_choices` keeps its list, and for how long at most: the label actions forget it on every change,
# the timeout bounds how long a write that bypasses them (seed_demo, a bulk load) stays unseen.
LABEL_CHOICES_KEY = "labels:choices:v1"
LABEL_CHOICES_TIMEOUT = 300


def label_choices() -> list[LabelChoice]:
    """Every label as the Subscribers page's filter lists it, by title: from the cache until a label changes.

    Building the list from the table made 200 model instances per page view (and on PostgreSQL a
    server-side cursor of its own); the cache hands back a list of tuples. `forget_label_choices`,
    called by the label actions once their transaction commits, empties it.
    """
    choices = cache.get(LABEL_CHOICES_KEY)
    if choices is None:
        choices = [
            LabelChoice(label.name, label.title, label.chip_class)
            for label in Label.objects.order_by("title", "pk").only("name", "title", "color")
        ]
        cache.set(LABEL_CHOICES_KEY, choices, LABEL_CHOICES_TIMEOUT)
    return choices


def forget_label_choices() -> None:
    """Empty `label_choices`' cache: the next page view reads the labels again."""
    cache.delete(LABEL_CHOICES_KEY)
