"""Every page and dialog of the console timed on the database you have, SQLite included: p50, p95, CPU, floor, queries.

Through django.test.Client (logged in as an operator, DEBUG off), in-process: the same code path as the main
benchmark (bench/run.py), without loading data or comparing with the admin, so it runs on any data set, e.g.
SQLite at 100,000 subscribers:

    DATABASE_URL=sqlite:////tmp/hx100k.sqlite3 .venv/bin/python manage.py migrate
    DATABASE_URL=sqlite:////tmp/hx100k.sqlite3 .venv/bin/python manage.py seed_demo --subscribers 100000 --labels 200
    DATABASE_URL=sqlite:////tmp/hx100k.sqlite3 .venv/bin/python bench/pages.py [--repeat 9] [--only TEXT]

`--profile TEXT` prints cProfile's view of the matching case instead; PAGES_ROOT=DIR times another checkout
(a `git archive` of an older commit) with the same script, for before/after figures in one run.
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.environ.get("PAGES_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hexasubs.settings")
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "pages-bench-" + "x" * 50)
os.environ["SECURE_SSL_REDIRECT"] = "0"
os.environ["SESSION_COOKIE_SECURE"] = "0"
os.environ["CSRF_COOKIE_SECURE"] = "0"

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from labels.models import Label  # noqa: E402
from subscribers.models import LabelOperation, Subscriber  # noqa: E402

HTMX = {"HX-Request": "true"}


def run_once(sql):
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql)
        cursor.fetchall()
        return time.perf_counter() - started


def floor(queries, repeat):
    selects = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    if not selects:
        return None
    slowest = max(selects, key=run_once)
    return statistics.median(run_once(slowest) for _ in range(repeat)) * 1000


CPU = []


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().strip()


def measure(call, repeat):
    call()
    times = []
    CPU.clear()
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - started) * 1000)
        CPU.append((time.process_time() - cpu) * 1000)
    with CaptureQueriesContext(connection) as captured:
        call()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, len(captured), floor(captured.captured_queries, repeat), captured


def expect(status, call):
    def checked():
        response = call()
        assert response.status_code == status, (response.status_code, response.content[:300])
        return response

    return checked


def cases(client):
    labels = list(Label.objects.filter(group__isnull=True).order_by("pk"))  # toggled as a checkbox
    big = Label.objects.filter(name="active_users").first() or max(labels, key=lambda label: label.pk * 0)
    small = labels[-1]
    sub = Subscriber.objects.order_by("pk").first()
    op = LabelOperation.objects.order_by("-pk").first()
    shown = set(sub.labels.values_list("pk", flat=True))
    state = {"shown": shown}

    def submit():
        chosen = state["shown"] ^ {small.pk}
        response = client.post(
            f"/subscribers/{sub.pk}/labels/",
            {"labels": sorted(chosen), "labels_before": sorted(state["shown"])},
            headers=HTMX,
        )
        state["shown"] = chosen
        return response

    get = lambda url, **kw: expect(200, lambda: client.get(url, **kw))  # noqa: E731
    out = [
        ("Subscribers, first page", get("/subscribers/")),
        ("Subscribers, htmx table", get("/subscribers/", headers=HTMX)),
        ("Subscribers, deepest page", get("/subscribers/?page=400")),
        ("Sort by name", get("/subscribers/?sort=name")),
        ("Sort by updated", get("/subscribers/?sort=updated")),
        ("Filter: big label", get(f"/subscribers/?label={big.name}")),
        ("Filter: small label", get(f"/subscribers/?label={small.name}")),
        ("Filter: none of big", get(f"/subscribers/?label={big.name}&label_mode=none")),
        ("Filter: none of big, by updated", get(f"/subscribers/?label={big.name}&label_mode=none&sort=updated")),
        ("Search: common", get("/subscribers/?q=garcia")),
        ("Filter: no labels", get("/subscribers/?no_labels=1")),
        ("Filter: created last days, by updated", get("/subscribers/?created_after=2026-12-01&sort=updated")),
        ("Filter: created this month, by updated", get("/subscribers/?created_after=2026-11-01&sort=updated")),
        ("Filter: locale fr, by locale", get("/subscribers/?locale=fr&sort=locale")),
        ("Labels page", get("/labels/")),
        ("Labels page by count", get("/labels/?sort=-subscriber_count")),
        ("Subscriber detail", get(f"/subscribers/{sub.pk}/")),
        ("Bulk changes page", get("/subscribers/bulk-changes/")),
        ("Broadcasts list", get("/broadcasts/")),
        ("Manage labels: open", get(f"/subscribers/{sub.pk}/labels/", headers=HTMX)),
        ("Manage labels: submit", expect(204, submit)),
    ]
    if op:
        out.append(("Bulk change detail", get(f"/subscribers/bulk-changes/{op.pk}/")))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--only")
    parser.add_argument("--profile")
    parser.add_argument("--sql", action="store_true")
    args = parser.parse_args()
    operator, _ = User.objects.get_or_create(username="pages-operator", defaults={"first_name": "Pages"})
    operator.groups.add(*Group.objects.filter(name__in=["Operators", "Label managers", "Broadcasters"]))
    with override_settings(
        ALLOWED_HOSTS=["testserver"],
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ):
        client = Client()
        client.force_login(operator)
        print(f"load {load_average()}  db {connection.vendor} {connection.settings_dict['NAME']}")
        for name, call in cases(client):
            if args.only and args.only.lower() not in name.lower():
                continue
            if not args.only and ("this month" in name or "locale fr" in name):
                continue  # seconds each: run with --only
            if args.profile and args.profile.lower() in name.lower():
                import cProfile
                import pstats

                call()
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(args.repeat):
                    call()
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats(60)
                stats.sort_stats("tottime").print_stats(30)
                if os.environ.get("CALLEES"):
                    stats.print_callees(os.environ["CALLEES"])
                continue
            median, p95, queries, floor_ms, captured = measure(call, args.repeat)
            floor_txt = f"{floor_ms:7.1f}" if floor_ms is not None else "      —"
            cpu = statistics.median(CPU)
            print(
                f"{name:<38} p50 {median:7.1f}  p95 {p95:7.1f}  cpu {cpu:6.1f}  floor {floor_txt}  q {queries}",
                flush=True,
            )
            if args.sql:
                for q in captured.captured_queries:
                    print("    ", q["time"], q["sql"])
        print(f"load {load_average()}")


if __name__ == "__main__":
    main()
