"""The benchmark (bench/) runs end to end on a tiny data set, so it cannot rot unnoticed."""

import ast
import importlib
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client, override_settings

from bench import harness, run
from bench.load import ensure_dataset
from bench.production import recommended_settings
from labels.models import Label
from subscribers.filters import search_by_name
from subscribers.models import Subscriber, SubscriberLabel
from subscribers.search import search_name

standard_data = importlib.import_module("subscribers.migrations.0002_standard_channels_and_groups")
BENCH = Path(run.__file__).resolve().parent

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="The benchmark measures PostgreSQL (server-side loading, VACUUM, planner estimates); "
    "run with DATABASE_URL=postgres://…",
)


@pytest.fixture
def _standard_channels_and_groups():
    standard_data.create_channels(apps, None)
    standard_data.fill_groups(apps)


@on_postgresql
@pytest.mark.django_db(transaction=True)  # the loader truncates tables and runs VACUUM: real transactions
@pytest.mark.usefixtures("_standard_channels_and_groups")
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


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_standard_channels_and_groups")
def test_the_smoke_run_measures_every_case_and_rewrites_only_its_own_sections(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    others = "<!-- loadtest -->\n## Load test\n\nKept as it is.\n<!-- /loadtest -->\n\n## Broadcasts\n\nKept too.\n"
    report.write_text("# Benchmarks\n\nAn old table written before the markers.\n\n" + others)

    saved = tmp_path / "run.json"
    assert run.main(["--smoke", "--repeat", "1", "--save", str(saved), "--output", str(report)]) == 0

    text = report.read_text()
    assert text.count("# Benchmarks") == 1 and "An old table" not in text
    assert text.endswith(others)
    main = text[text.index("<!-- bench -->") : text.index("<!-- /bench -->")]
    for case in ("Subscribers, first page", "Labels page with counts", "API: upsert", "Bulk add one label"):
        assert f"| {case}" in main
    assert "| tuned admin p50 / p95 |" in main and "JSON endpoint ↔ HTML" in main
    assert "shared_buffers" in main and "random_page_cost" in main and "Load average" in main
    assert "## How we compare" in main and "their figures on their hardware" in main
    # The bulk cases and the admins' actions added and removed their label again: the data is as it was.
    assert not Label.objects.get(name="bench_bulk").subscribers.exists()

    # The figures kept by --save render the same section again, measuring nothing.
    rendered = tmp_path / "rendered.md"
    rendered.write_text(others)
    assert run.main(["--render", str(saved), "--output", str(rendered)]) == 0
    assert rendered.read_text() == text

    # A second run replaces the section in place: nothing is duplicated, the others stay.
    assert run.main(["--smoke", "--repeat", "1", "--no-bulk", "--only", "first page", "--output", str(report)]) == 0
    again = report.read_text()
    assert again.count("<!-- bench -->") == 1 and again.endswith(others)
    assert "Bulk add one label" not in again


@override_settings(ROOT_URLCONF="bench.urls")
def test_the_tuned_admin_searches_with_our_search_expression(make_subscriber, admin_user):
    for first, last in [("Hélène", "Dupont"), ("Ada", "Lovelace"), ("Grace", "Hopper")]:
        make_subscriber(first_name=first, last_name=last, search_name=search_name(first, last))
    client = Client()
    client.force_login(admin_user)
    for term in ("helene", "Lovelace Ada", "hopper"):
        response = client.get("/tuned-admin/subscribers/subscriber/", {"q": term})
        assert response.status_code == 200
        shown = {subscriber.pk for subscriber in response.context["cl"].result_list}
        assert shown == set(search_by_name(Subscriber.objects.all(), term).values_list("pk", flat=True))
    assert client.get("/baseline-admin/subscribers/subscriber/").status_code == 200


def test_a_section_is_replaced_between_its_markers_and_the_rest_is_kept():
    document = "<!-- bench -->\nold\n<!-- /bench -->\n\n<!-- search -->\nTheirs.\n<!-- /search -->\n"
    replaced = harness.replace_section(document, "bench", "new\n")
    assert replaced == "<!-- bench -->\nnew\n<!-- /bench -->\n\n<!-- search -->\nTheirs.\n<!-- /search -->\n"
    # Without markers, the old copy at the top runs up to the first other section.
    legacy = harness.replace_section(
        "# Old\ntable\n\n<!-- search -->\nTheirs.\n<!-- /search -->\n", "bench", "new", legacy_start=0
    )
    assert legacy == "<!-- bench -->\nnew\n<!-- /bench -->\n\n<!-- search -->\nTheirs.\n<!-- /search -->\n"
    inserted = harness.insert_after(replaced, "bench", "bench-production", "tuned")
    assert inserted.index("<!-- /bench -->") < inserted.index("tuned") < inserted.index("<!-- search -->")
    assert harness.insert_after(inserted, "bench", "bench-production", "again").count("<!-- bench-production -->") == 1


def test_each_bench_writes_its_own_section_of_the_file_and_keeps_the_others(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(
        "<!-- bench -->\nOurs.\n<!-- /bench -->\n\n## CSV\n\nold, written without markers\n\n## Search\nTheirs.\n"
    )

    harness.write_section(path, "csv", "## CSV\n\nnew", heading="## CSV")
    harness.write_section(path, "broadcasts", "## Broadcasts\n\nfirst", heading="## Broadcasts")
    harness.write_section(path, "csv", "## CSV\n\nnewer", heading="## CSV")

    text = path.read_text()
    assert "old" not in text and "new\n" not in text and text.count("newer") == 1
    assert text.index("<!-- /bench -->") < text.index("<!-- csv -->") < text.index("## Search\nTheirs.")
    assert text.rstrip().endswith("<!-- broadcasts -->\n## Broadcasts\n\nfirst\n<!-- /broadcasts -->")


def test_the_production_settings_follow_the_machine():
    settings = recommended_settings(24 * 1024**3, 2)
    assert settings["shared_buffers"] == "6144MB" and settings["effective_cache_size"] == "18432MB"
    assert settings["random_page_cost"] == "1.1" and settings["jit"] == "off"
    assert settings["max_parallel_workers_per_gather"] == "1"
    assert recommended_settings(128 * 1024**3, 16)["shared_buffers"] == "8192MB"


def test_percentiles_are_nearest_rank():
    assert harness.percentile(list(range(1, 10)), 95) == 9
    assert harness.percentile(list(range(1, 21)), 95) == 19
    assert harness.percentile([5.0], 50) == 5.0


def test_the_bench_scripts_import_each_other_without_a_cycle():
    graph = {}
    for path in BENCH.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "bench":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
                imported.add(node.module.split(".")[1])
        graph[path.stem] = imported & {p.stem for p in BENCH.glob("*.py")}

    def reaches(start, goal, seen=()):
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, (*seen, nxt))) for nxt in graph[start])

    assert [name for name in graph if reaches(name, name)] == []
