"""Every sort of the subscriber table reads an index in order: no join, no sort of every row."""

import pytest
from django.db import connection

from subscribers.models import Subscriber
from subscribers.tables import SubscriberTable

pytestmark = pytest.mark.django_db

SORTS = [
    f"{prefix}{name}"
    for name, column in SubscriberTable.base_columns.items()
    if column.orderable is not False
    for prefix in ("", "-")
]


def first_page_sql(sort):
    table = SubscriberTable(Subscriber.objects.all(), order_by=sort)
    return table.data.data[:25].query.sql_with_params()


@pytest.mark.parametrize("sort", SORTS)
def test_the_sort_orders_by_subscriber_columns_ending_with_the_id(sort):
    sql, _params = first_page_sql(sort)
    assert " JOIN " not in sql
    order_by = sql.split("ORDER BY")[1]
    assert order_by.split(",")[-1].strip().startswith('"subscribers_subscriber"."id"')


@pytest.mark.skipif(connection.vendor != "postgresql", reason="Only PostgreSQL's plans are checked here.")
@pytest.mark.parametrize("sort", SORTS)
def test_postgresql_reads_the_first_page_from_an_index_without_sorting(make_subscriber, sort):
    make_subscriber()
    sql, params = first_page_sql(sort)
    with connection.cursor() as cursor:
        # On a tiny table the planner would rather sort; forbid that to see whether an index can serve the order.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Sort" not in plan, plan
