"""Benchmark Hexasubs against the default Django admin on a million subscribers.

    make bench                          # 1,000,000 subscribers, writes BENCHMARKS.md
    make bench BENCH_ARGS=--smoke       # 2,000 subscribers, a few repetitions (CI)
    .venv/bin/python bench/run.py --help

Every case is a request through the real Django stack (an in-process, logged-in
test client, warm caches), timed as the median of repeated requests, beside the
same work in a plain admin changelist (bench/admin_baseline.py) and the case's
most expensive SQL statement run alone with the database cursor (the floor).
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hexasubs_bench"
# The smoke run has a database of its own, so it never replaces the million-subscriber data set.
SMOKE_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hexasubs_bench_smoke"


def _environment(*, smoke: bool = False) -> None:
    """Production-like settings (DEBUG off), without HTTPS redirects the test client would follow."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", SMOKE_DATABASE_URL if smoke else DEFAULT_DATABASE_URL)
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("DEBUG", "0")
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ.setdefault(name, "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hexasubs.settings")


def _create_database_if_missing(url: str) -> None:
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    admin_params = {
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**{key: value for key, value in admin_params.items() if value is not None}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
        if not exists:
            print(f"Creating the database {database['NAME']}…")
            conn.execute(f'CREATE DATABASE "{database["NAME"]}"')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny data set, few repetitions: checks the bench runs")
    parser.add_argument("--subscribers", type=int, help="data set size (default 1,000,000; 2,000 with --smoke)")
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--repeat", type=int, help="requests per case (default 9; 2 with --smoke)")
    parser.add_argument("--bulk-repeat", type=int, help="bulk add/remove runs (default 3; 1 with --smoke)")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument("--load-only", action="store_true", help="build (or find) the data set and stop")
    parser.add_argument(
        "--output", help="where to write the results (default BENCHMARKS.md; a smoke run writes nothing unless given)"
    )
    args = parser.parse_args(argv)
    subscribers = args.subscribers or (2_000 if args.smoke else 1_000_000)
    repeat = args.repeat or (2 if args.smoke else 9)

    _environment(smoke=args.smoke)
    import django

    django.setup()
    from django.core.management import call_command

    _create_database_if_missing(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0, interactive=False)

    from bench.load import ensure_dataset

    ensure_dataset(subscribers, args.labels)
    if args.load_only:
        return 0
    from bench.cases import run_benchmark

    run_benchmark(
        repeat=repeat,
        smoke=args.smoke,
        only=args.only,
        bulk_repeat=args.bulk_repeat or (1 if args.smoke else 3),
        output=Path(args.output) if args.output else None if args.only or args.smoke else ROOT / "BENCHMARKS.md",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
