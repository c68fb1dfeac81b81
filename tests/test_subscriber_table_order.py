"""The subscriber table's sort after filtering: every sort can hide its index, and keeps its order and its links."""

import pytest

from subscribers.models import Subscriber
from subscribers.queries import sorted_after_filtering
from subscribers.tables import SubscriberTable
from tests.test_sort_indexes import SORTS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("sort", [None, *SORTS])
def test_every_sort_can_be_sorted_after_filtering_in_the_same_order(sort):
    walking = SubscriberTable(Subscriber.objects.all(), order_by=sort)
    sorting = SubscriberTable(Subscriber.objects.all(), order_by=sort, sort_after_filtering=True)

    assert "COALESCE" not in str(walking.data.data.query)
    assert str(sorting.data.data.query) == str(sorted_after_filtering(walking.data.data).query)
    assert sorting.order_by == walking.order_by  # the headers show the same sort, with the same links
