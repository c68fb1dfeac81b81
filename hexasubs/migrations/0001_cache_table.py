"""The database cache's table, so `migrate` alone prepares a new host.

Created whatever the cache is now (settings.CACHES), so a host can move between Redis and the
database cache without a step of its own; an existing table is left as it is.
"""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "hexasubs_cache"  # settings.CACHES's LOCATION when no Redis is configured


def create_cache_table(apps, schema_editor):
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
