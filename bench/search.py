"""The name search at a million subscribers: the Subscribers page, the API's `q`, and the plans behind them.

    .venv/bin/python bench/search.py [--repeat 11] [--plans]      (make bench-search)

On the benchmark's database and data set (DATABASE_URL, default hexasubs_bench; bench/load.py loads it on
first use, as `bench/run.py` does), with DEBUG off; or on SQLite (DATABASE_URL=sqlite:///…) with the
subscribers already there. Searches for the rarest and the most common last name,
the rare name as typed in another script, two words, and one or two letters; each through the page (an
operator, logged in) and through the API, timed wall clock over --repeat runs after one warm-up, with the
CPU time of this process (the Django side) and the load average beside each. The first page without a
search is the baseline of the same run. With --plans, prints EXPLAIN ANALYZE of the statements the search
runs: the page's rows and bounded count, and the API's page.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _timed(call, repeat: int) -> tuple[float, float, float]:
    """(median ms, p95 ms, median CPU ms of this process) over `repeat` calls after one warm-up."""
    call()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        response = call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 200, response.status_code
    walls.sort()
    return statistics.median(walls), walls[round(0.95 * (len(walls) - 1))], statistics.median(cpus)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=11, help="timed requests per search (default 11)")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE of each search's statements")
    args = parser.parse_args(argv)
    from bench.harness import environment

    environment()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.http import QueryDict
    from django.test import Client

    from api.actions import create_api_key
    from api.models import ApiKey
    from bench.harness import create_database_if_missing
    from bench.load import ensure_dataset
    from subscribers.filters import SubscriberFilter
    from subscribers.models import Subscriber
    from subscribers.search import fold

    settings.ALLOWED_HOSTS = ["*"]
    postgres = connection.vendor == "postgresql"
    if postgres:
        create_database_if_missing()
    call_command("migrate", verbosity=0, interactive=False)
    if postgres:
        ensure_dataset(args.subscribers, args.labels)
    else:
        count = Subscriber.objects.count()
        print(f"SQLite: the {count:,} subscribers there (manage.py seed_demo --subscribers 100000 makes them).")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT last_name, count(*) FROM {Subscriber._meta.db_table} WHERE last_name <> '' "
            "GROUP BY last_name ORDER BY count(*), last_name"
        )
        names = cursor.fetchall()
    (rare, rare_count), (common, common_count) = names[0], names[-1]
    other = next(((name, count) for name, count in names if fold(name) != name.lower()), (rare, rare_count))
    searches = [
        ("no search (baseline: the first page)", None),
        (f"rare name “{rare}” ({rare_count:,})", rare),
        (f"rare name “{other[0]}” typed “{fold(other[0])}” ({other[1]:,})", fold(other[0])),
        (f"common name “{common}” ({common_count:,})", common),
        (f"two words “ada {fold(rare)}”", f"ada {fold(rare)}"),
        ("one letter “a”", "a"),
        ("two letters “zh”", "zh"),
        ("two letters found nowhere “qx”", "qx"),
    ]

    operator, _ = User.objects.get_or_create(username="bench-search", defaults={"first_name": "Bench"})
    operator.groups.add(*Group.objects.filter(name="Operators"))
    page = Client()
    page.force_login(operator)
    ApiKey.objects.filter(name="Benchmark search").delete()
    _key, full_key = create_api_key("Benchmark search", rate_limit_per_minute=10**9)
    api = Client(headers={"Authorization": f"Bearer {full_key}"})

    print(f"{args.repeat} runs each, median/p95 wall clock, CPU = this process (Django); load before {_load()}")
    for title, query in searches:
        params = {"q": query} if query else {}
        load = _load()
        page_p50, page_p95, page_cpu = _timed(lambda params=params: page.get("/subscribers/", params), args.repeat)
        api_p50, api_p95, api_cpu = _timed(lambda params=params: api.get("/api/v1/subscribers", params), args.repeat)
        print(
            f"| {title} | {page_p50:.0f} / {page_p95:.0f} ms (CPU {page_cpu:.0f}) "
            f"| {api_p50:.0f} / {api_p95:.0f} ms (CPU {api_cpu:.0f}) | {load} |",
            flush=True,
        )
        if args.plans and query and postgres:
            found = SubscriberFilter(QueryDict(f"q={query}"), queryset=Subscriber.objects.all()).qs
            for what, queryset in [
                ("page rows", found.order_by("-created_at", "-pk")[:25]),
                ("page count (bounded)", found.order_by().values("pk")[:10_001]),
                ("API page", found.order_by("updated_at", "pk")[:51]),
            ]:
                sql, sql_params = queryset.query.sql_with_params()
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", sql_params)
                    print(f"    {what}:\n" + "\n".join(f"      {row[0]}" for row in cursor.fetchall()))
    print(f"load after {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
