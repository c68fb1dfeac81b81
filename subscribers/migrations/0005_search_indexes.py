from django.db import migrations, models

# The name search (subscribers.filters.FullName) matches UPPER(first || ' ' || last) with LIKE '%word%':
# a trigram index on exactly that expression answers it from the index on PostgreSQL. SQLite has no
# trigram indexes and scans, which is fast enough at its scale.
SEARCH_INDEX = """
    CREATE INDEX IF NOT EXISTS subscriber_name_search_trgm ON subscribers_subscriber
    USING gin ((UPPER(("first_name" || ' ' || "last_name")::text)) gin_trgm_ops)
"""


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(SEARCH_INDEX)


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS subscriber_name_search_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("labels", "0001_initial"),
        ("subscribers", "0004_label_deleted_source"),
    ]

    operations = [
        # foreign_id first, so the unique index also finds an exact foreign id on any channel.
        migrations.RemoveConstraint(model_name="subscriber", name="subscriber_unique_per_channel"),
        migrations.AddConstraint(
            model_name="subscriber",
            constraint=models.UniqueConstraint(fields=("foreign_id", "channel"), name="subscriber_unique_per_channel"),
        ),
        migrations.RunPython(create_search_index, drop_search_index, elidable=False),
    ]
