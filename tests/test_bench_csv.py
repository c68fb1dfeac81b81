"""The CSV benchmark (bench/csv_import.py) runs end to end on a small file, so it cannot rot unnoticed."""

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client

from bench import csv_import

standard_data = importlib.import_module("subscribers.migrations.0002_standard_channels_and_groups")

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="The benchmark measures PostgreSQL (COPY, VACUUM)"),
    # The benchmark truncates tables and runs VACUUM, which needs real transactions.
    pytest.mark.django_db(transaction=True),
]


def test_the_benchmark_measures_the_floor_the_imports_and_the_export(tmp_path, admin_user, monkeypatch):
    monkeypatch.setattr(csv_import, "FILES", tmp_path)
    path = csv_import.write_file(tmp_path / "people.csv", 300)
    csv_import.reset()
    standard_data.create_channels(apps, None)
    floor = csv_import.floor(path)
    csv_import.reset()
    first, again = csv_import.ours(path), csv_import.ours(path)
    client = Client()
    client.force_login(admin_user)
    exported = csv_import.export(client, 300)

    assert floor["wall"] > 0 and first["rows"] == again["rows"] == 300
    assert first["summary"].startswith("Created 300 subscribers")
    assert again["summary"] == "Nothing changed: the 300 rows match the subscribers as they are."
    assert exported["rows"] == 300 and exported["peak_all"] > 0
    results = {
        "machine": "test",
        "load_before": (0, 0, 0),
        "load_after": (0, 0, 0),
        "size": path.stat().st_size,
        "assignments": 1,
        "sqlite_rows": 0,
        "floor": floor,
        "first": first,
        "again": again,
        "export": exported,
    }
    text = csv_import.report(results, rows=300, command="make bench-csv")
    assert text.startswith(csv_import.SECTION) and "| Import, 300 new with labels |" in text
    assert "runs at" in csv_import.notes(results, 300) and "the floor's time" in csv_import.notes(results, 300)
