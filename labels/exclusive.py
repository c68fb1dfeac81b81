"""Exclusive label groups: which labels given together clash, and how the operator is told.

A subscriber carries one label of an exclusive group at most (labels.LabelGroup.exclusive). Every path
that gives labels refuses two of one such group at once: the forms (`labels.forms`), the label actions
(`subscribers.actions.ExclusiveClash`, which the API and the admin turn into this message) and the CSV
import (a rejected row). They find the clashes with `clashing_sets` and say so with `clash_message`.
"""

from collections.abc import Iterable

from django.utils.translation import gettext as _

from hexasubs.quotes import quoted


def clashing_sets(label_ids: Iterable[int], groups: dict[int, set[int]]) -> list[list[int]]:
    """The ids among `label_ids` sharing an exclusive group: one sorted list per group holding two or more.

    `groups` is {group id: its label ids}, as `labels.queries.exclusive_groups_of` reads it (no query here).
    """
    given = set(label_ids)
    return [sorted(given & members) for members in groups.values() if len(given & members) > 1]


def clash_message(clashes: Iterable[Iterable[str]]) -> str:
    """One sentence per clashing set of labels (their titles, or names for integrators), in the active language."""
    return " ".join(
        _("%(labels)s belong to one exclusive group: a subscriber can carry only one of them.")
        % {"labels": quoted(list(names))}
        for names in clashes
    )
