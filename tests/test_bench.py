"""The benchmark (bench/) runs end to end on a tiny data set, so it cannot rot unnoticed."""

import importlib

import pytest
from django.apps import apps
from django.db import connection

from bench.cases import run_benchmark
from bench.load import ensure_dataset
from labels.models import Label
from subscribers.models import Subscriber, SubscriberLabel

standard_data = importlib.import_module("subscribers.migrations.0002_standard_channels_and_groups")

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="The benchmark measures PostgreSQL (COPY-like loading, VACUUM, planner estimates); "
        "run with DATABASE_URL=postgres://…",
    ),
    # The loader truncates tables and runs VACUUM, which needs real transactions.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _standard_channels_and_groups():
    standard_data.create_channels(apps, None)
    standard_data.fill_groups(apps)


def test_the_loader_builds_the_data_set_once_and_then_reuses_it():
    ensure_dataset(2_000, 20, log=lambda *args: None)
    first_ids = list(Subscriber.objects.order_by("pk").values_list("pk", flat=True)[:5])
    assert Subscriber.objects.count() == 2_000
    assert Label.objects.count() == 20
    # The skew: "Active users" is carried by about half, the twentieth by about 1%.
    assert 800 < Label.objects.get(name="active_users").subscribers.count() < 1_200
    assert SubscriberLabel.objects.filter(label__name="segment_20").count() < 60

    messages = []
    ensure_dataset(2_000, 20, log=messages.append)
    assert messages == ["Reusing the data set: 2,000 subscribers, 20 labels."]
    assert list(Subscriber.objects.order_by("pk").values_list("pk", flat=True)[:5]) == first_ids


def test_the_smoke_run_measures_every_case_and_writes_the_report(tmp_path):
    ensure_dataset(2_000, 20, log=lambda *args: None)
    report = tmp_path / "BENCHMARKS.md"
    results = run_benchmark(repeat=1, smoke=True, only=None, output=report)

    cases = [result.case for result in results]
    assert cases[0] == "Subscribers, first page"
    assert "Labels page with counts" in cases and "API: upsert" in cases
    bulk = [case for case in cases if case.startswith("Bulk")]
    assert [case.split(" on ")[0] for case in bulk] == ["Bulk add one label", "Bulk remove one label"]
    assert all(result.ours_ms is None or result.ours_ms > 0 for result in results)
    assert all(result.ours_queries is None or result.ours_queries > 0 for result in results)
    text = report.read_text()
    assert "| Subscribers, first page |" in text and "PostgreSQL" in text
    # The bulk case added and removed its label again: the data set is as it was.
    assert not Label.objects.get(name="bench_bulk").subscribers.exists()
