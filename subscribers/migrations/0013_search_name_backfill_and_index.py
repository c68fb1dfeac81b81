"""Fill `Subscriber.search_name` for the rows written before it existed, then index it for the search.

The trigram index on UPPER(first_name || ' ' || last_name) of migration 0005 served the old search only:
it goes first, so the backfill does not write every row into it too.

The fold is Python (anyascii), so the backfill reads the names WINDOW rows at a time in id order, folds
each distinct name once, and writes the window back in one UPDATE joined to the folded values. Each
window is its own short transaction (this migration is not atomic): no lock is held for long, and a
migration stopped half-way resumes where it stopped, since it only picks rows whose `search_name` is
still empty. Measured at a million subscribers: see BENCHMARKS.md, section "Search".

On PostgreSQL the search (`subscribers.filters.search_by_name`) is answered by a trigram index on
`search_name`, built CONCURRENTLY so writes go on meanwhile. SQLite has no trigram index and scans,
which is fast enough at its scale.
"""

import json

from django.db import connection, migrations, transaction

from subscribers.search import search_name

# Ids per window: about 10,000 rows read and written per transaction, a fraction of a second.
WINDOW = 10_000

SEARCH_INDEX = """
    CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriber_search_name_trgm ON subscribers_subscriber
    USING gin (search_name gin_trgm_ops)
"""
OLD_INDEX = """
    CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriber_name_search_trgm ON subscribers_subscriber
    USING gin ((UPPER(("first_name" || ' ' || "last_name")::text)) gin_trgm_ops)
"""


def backfill_search_names(subscribers, *, window: int = WINDOW) -> int:
    """Write the folded name of every subscriber whose `search_name` is empty, `window` rows at a time in id order.

    `subscribers` is the Subscriber model (the historical one in a migration). Returns the number of
    rows written. Rows whose names fold to nothing stay empty.
    """
    table = connection.ops.quote_name(subscribers._meta.db_table)
    pending = subscribers.objects.filter(search_name="").exclude(first_name="", last_name="").order_by("pk")
    written, last_id, folded = 0, 0, {}
    while True:
        with transaction.atomic():
            rows = list(pending.filter(pk__gt=last_id).values_list("pk", "first_name", "last_name")[:window])
            if not rows:
                return written
            last_id = rows[-1][0]
            if len(folded) > 100_000:  # names repeat a lot, but the cache of distinct ones must stay bounded
                folded.clear()
            values = []
            for pk, first, last in rows:
                if (first, last) not in folded:
                    folded[(first, last)] = search_name(first, last)
                if folded[(first, last)]:
                    values.append((pk, folded[(first, last)]))
            if values:
                _write(table, values)
            written += len(values)


def _write(table: str, values: list[tuple[int, str]]) -> None:
    """Set each (id, folded name) pair's search_name in one UPDATE joined to the pairs."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""
                UPDATE {table} AS s SET search_name = v.name
                FROM unnest(%s::bigint[], %s::text[]) AS v(id, name) WHERE s.id = v.id
                """,
                [[pk for pk, _ in values], [name for _, name in values]],
            )
        else:
            cursor.execute(
                f"""
                UPDATE {table} SET search_name = v.name
                FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS name
                      FROM json_each(%s)) AS v
                WHERE {table}.id = v.id
                """,
                [json.dumps(values)],
            )


def backfill(apps, schema_editor):
    backfill_search_names(apps.get_model("subscribers", "Subscriber"))


def drop_old_index(apps, schema_editor):
    # First: it served the old search only, and every row the backfill writes would also be written into it.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS subscriber_name_search_trgm")


def restore_old_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_INDEX)


def index_search_name(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(SEARCH_INDEX)
        schema_editor.execute("ANALYZE subscribers_subscriber")


def unindex_search_name(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS subscriber_search_name_trgm")


class Migration(migrations.Migration):
    # Each window of the backfill commits on its own, and CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("subscribers", "0012_import_row_search_name"),
    ]

    operations = [
        migrations.RunPython(drop_old_index, restore_old_index, elidable=False),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(index_search_name, unindex_search_name, elidable=False),
    ]
