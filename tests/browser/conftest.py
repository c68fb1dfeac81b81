import importlib

import pytest
from django.apps import apps

standard_data = importlib.import_module("subscribers.migrations.0002_standard_channels_and_groups")


@pytest.fixture(autouse=True)
def _standard_channels_and_groups(transactional_db):
    """Browser tests commit for real, and the database is emptied after each of them.

    Restore what the data migration made (channels, groups), as a newly
    migrated database has them; Django recreates the permissions itself.
    """
    standard_data.create_channels(apps, None)
    standard_data.fill_groups(apps)
