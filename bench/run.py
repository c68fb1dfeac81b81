"""Benchmark Hexasubs against a plain and a tuned Django admin on a million subscribers.

    make bench                                        # 1,000,000 subscribers, writes its sections of BENCHMARKS.md
    make bench BENCH_ARGS=--smoke                     # 2,000 subscribers, a few repetitions (CI)
    make bench BENCH_ARGS="--only Search"             # some cases only, nothing written
    make bench BENCH_ARGS=--production-cluster        # and again on a separate cluster with production settings
    .venv/bin/python bench/run.py --help

Every case is a request through the real Django stack (an in-process, logged-in test client, warm
caches), timed as the median and p95 of at least nine requests, beside the same work in a plain and a
tuned admin changelist (bench/admin_baseline.py) and the case's most expensive SQL statement run alone
(the floor). The bulk label changes come from bench/bulk_chunked.py's engine, timed wall clock including
every COMMIT. VACUUM ANALYZE runs before the first case and after the bulk ones; the order is fixed.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402  (after the path: the script runs as bench/run.py)

SECTION = "bench"
PRODUCTION_SECTION = "bench-production"
BULK_CASES = ("bulk add one label", "bulk remove one label")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny data set, few repetitions: checks the bench runs")
    parser.add_argument("--subscribers", type=int, help="data set size (default 1,000,000; 2,000 with --smoke)")
    parser.add_argument("--labels", type=int, help="labels (default 200; 20 with --smoke)")
    parser.add_argument("--repeat", type=int, help="timed requests per side and case (default 9; 2 with --smoke)")
    parser.add_argument(
        "--bulk-runs", type=int, help="bulk add/remove runs against the floor (default 3; 1 with --smoke)"
    )
    parser.add_argument("--no-bulk", action="store_true", help="skip the bulk cases (minutes at a million)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain admin (minutes at a million)")
    parser.add_argument(
        "--production-plain", action="store_true", help="run the plain admin on the production cluster too"
    )
    parser.add_argument("--only", help="run only the cases whose name contains this text (nothing written)")
    parser.add_argument("--load-only", action="store_true", help="build (or find) the data set and stop")
    parser.add_argument("--database-url", help="the database (default …/hexasubs_bench; …_smoke with --smoke)")
    parser.add_argument(
        "--output", help="where to write the sections (default BENCHMARKS.md; a smoke or --only run writes nothing)"
    )
    parser.add_argument(
        "--production-cluster",
        action="store_true",
        help="also run the cases on a temporary cluster with production settings (bench/production.py)",
    )
    parser.add_argument("--production-only", action="store_true", help="only the production-cluster run")
    parser.add_argument("--save", help="also keep the figures measured in this JSON file (production: FILE.production)")
    parser.add_argument("--render", help="rewrite the sections from a --save file, measuring nothing")
    parser.add_argument("--json", help=argparse.SUPPRESS)  # the production run's child process writes here
    args = parser.parse_args(argv)
    subscribers = args.subscribers or (2_000 if args.smoke else 1_000_000)
    labels = args.labels or (20 if args.smoke else 200)
    repeat = args.repeat or (2 if args.smoke else 9)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat is at least 1")
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    output = Path(args.output) if args.output else None
    if output is None and not (args.smoke or args.only or args.json):
        output = ROOT / "BENCHMARKS.md"

    harness.environment(smoke=args.smoke)
    import django

    django.setup()
    if args.render:
        render_saved(Path(args.render), output or ROOT / "BENCHMARKS.md")
        return 0
    from django.core.management import call_command

    harness.create_database_if_missing()
    call_command("migrate", verbosity=0, interactive=False)

    from bench.load import ensure_dataset

    ensure_dataset(subscribers, labels)
    if args.load_only:
        return 0

    run = None
    if not args.production_only:
        run = measure_all(args, repeat=repeat)
        for path in (args.json, args.save):
            if path:
                Path(path).write_text(run.to_json())
        if output:
            write_section(output, run)
    if args.production_cluster or args.production_only:
        from bench import production

        production_run, cluster = production.run_on_cluster(args, subscribers=subscribers, labels=labels)
        if args.save:
            saved = {"run": json.loads(production_run.to_json()), "cluster": cluster}
            Path(f"{args.save}.production").write_text(json.dumps(saved))
        if output:
            write_production_section(output, production_run, cluster)
    return 0


def measure_all(args, *, repeat: int):
    """Every case in its fixed order, the bulk cases last, VACUUM ANALYZE before and after them."""
    from django.db import connection
    from django.test import override_settings

    from bench import cases

    # A fresh session: the loader's SETs (synchronous_commit off, a larger maintenance_work_mem) stay behind.
    connection.close()
    vacuumed = [harness.vacuum_analyze()]
    run = cases.new_run(repeat=repeat, smoke=args.smoke, data=cases.describe_data(), vacuum_seconds=vacuumed)
    run.load_before = harness.load_average()
    with override_settings(
        ROOT_URLCONF="bench.urls",
        ALLOWED_HOSTS=["testserver"],
        # Static files from the sources: the benchmark needs no collectstatic.
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ):
        run.results += cases.run_cases(repeat=repeat, smoke=args.smoke, only=args.only, plain=not args.no_plain)
    if not args.no_bulk and (not args.only or any(args.only.lower() in name for name in BULK_CASES)):
        run.results += bulk_cases(args)
        vacuumed.append(harness.vacuum_analyze())
    run.load_after = harness.load_average()
    return run


def bulk_cases(args):
    """Add and remove one label on everyone carrying the big label, through bench/bulk_chunked.py's engine."""
    from bench import bulk_chunked, cases
    from labels.models import Label

    runs = args.bulk_runs if args.bulk_runs is not None else (1 if args.smoke else 3)
    print(f"Bulk cases: {runs} run(s) of add and remove against the floor (bench/bulk_chunked.py)…", flush=True)
    report = bulk_chunked.run_all(runs=runs, smoke=args.smoke, bot=False, profile_run=False)
    target = Label.objects.get(name=bulk_chunked.TARGET_LABEL)
    rows = cases.bulk_results(report, target, smoke=args.smoke)
    for row in rows:
        print(f"{row.case:<52} ours {cases.fmt(row.ours.p50)}  floor {cases.fmt(row.floor_ms)}", flush=True)
    return rows


def render_saved(saved: Path, output: Path) -> None:
    """The sections rewritten from figures kept by --save (after editing bench/notes.md, say)."""
    from bench import cases

    if saved.exists():  # a --production-only run keeps only FILE.production
        write_section(output, cases.Run.from_json(saved.read_text()))
    production = Path(f"{saved}.production")
    if production.exists():
        kept = json.loads(production.read_text())
        write_production_section(output, cases.Run.from_json(json.dumps(kept["run"])), kept["cluster"])


def write_section(output: Path, run) -> None:
    """Rewrite this script's section of `output`, leaving every other section as it is."""
    from bench import cases

    document = output.read_text() if output.exists() else ""
    # Before the markers, this section was the top of the file, up to the first other section's marker.
    output.write_text(harness.replace_section(document, SECTION, cases.render_main(run), legacy_start=0))
    print(f"Wrote {output}")


def write_production_section(output: Path, run, cluster: dict) -> None:
    from bench import cases

    document = output.read_text() if output.exists() else ""
    text = cases.render_production(run, cluster=cluster)
    output.write_text(harness.insert_after(document, SECTION, PRODUCTION_SECTION, text))
    print(f"Wrote the production-settings section into {output}")


if __name__ == "__main__":
    sys.exit(main())
