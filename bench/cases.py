"""The benchmark's cases, their measurement and the BENCHMARKS.md report."""

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from api.actions import create_api_key
from api.models import ApiKey
from bench.load import BIG_LABEL
from bench.loadtest import kept_section
from labels.models import Label
from subscribers.models import Subscriber, SubscriberLabel
from subscribers.queries import REACHABLE_ROWS, subscribers_matching

NOTES = Path(__file__).resolve().parent / "notes.md"
PER_PAGE = 25
DEEPEST_PAGE = REACHABLE_ROWS // PER_PAGE
ADMIN = "/baseline-admin/subscribers/subscriber/"
HTMX = {"HX-Request": "true"}


@dataclass
class Result:
    case: str
    ours_ms: float | None
    ours_queries: int | None
    admin_ms: float | None = None
    admin_queries: int | None = None
    floor_ms: float | None = None
    note: str = ""


@dataclass
class Measured:
    median_ms: float
    queries: int
    floor_ms: float | None


def _ms(seconds: float) -> float:
    return seconds * 1000


def _expect(status: int, call: Callable) -> Callable:
    """`call` wrapped so that an unexpected status stops the benchmark (a broken page is not fast)."""

    def checked():
        response = call()
        if response.status_code != status:
            body = response.content[:500].decode(errors="replace")
            raise AssertionError(f"Expected {status}, got {response.status_code}: {body}")
        return response

    return checked


def measure(call: Callable, repeat: int, *, warm: int = 1) -> Measured:
    """The median time of `call`, its query count, and the floor: its slowest SELECT run alone."""
    for _ in range(warm):
        call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as captured:
        call()
    return Measured(_ms(statistics.median(times)), len(captured), _floor(captured.captured_queries, repeat))


def _floor(queries: list[dict], repeat: int) -> float | None:
    """The most expensive SELECT of the request, re-run alone through the cursor (median of `repeat` runs)."""
    selects = [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    if not selects:
        return None
    slowest = max(selects, key=_run_once)
    return _ms(statistics.median(_run_once(slowest) for _ in range(repeat)))


def _run_once(sql: str) -> float:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql)
        cursor.fetchall()
        return time.perf_counter() - started


class Bench:
    def __init__(self, *, repeat: int, smoke: bool, bulk_repeat: int):
        self.repeat, self.smoke, self.bulk_repeat = repeat, smoke, bulk_repeat
        self.results: list[Result] = []
        self.bulk_section = ""
        operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"first_name": "Bench"})
        operator.groups.add(*Group.objects.filter(name__in=["Operators", "Label managers"]))
        self.operator = operator
        superuser = User.objects.filter(username="bench-admin").first()
        self.superuser = superuser or User.objects.create_superuser("bench-admin", password=None)
        self.ours, self.admin = Client(), Client()
        self.ours.force_login(self.operator)
        self.admin.force_login(self.superuser)
        ApiKey.objects.filter(name="Benchmark").delete()
        _key, full_key = create_api_key("Benchmark", rate_limit_per_minute=10**9)
        self.api = Client(headers={"Authorization": f"Bearer {full_key}"})

    def add(self, case, ours, admin=None, *, note="", repeat=None):
        repeat = repeat or self.repeat
        started = time.monotonic()
        mine = measure(ours, repeat) if ours else None
        theirs = None
        if admin:
            # A slow admin case gets fewer repetitions: its median is not in doubt.
            first = time.perf_counter()
            admin()
            admin_repeat = repeat if time.perf_counter() - first < 1 else min(repeat, 3)
            theirs = measure(admin, admin_repeat, warm=0)
        self.results.append(
            Result(
                case,
                mine and mine.median_ms,
                mine and mine.queries,
                theirs and theirs.median_ms,
                theirs and theirs.queries,
                mine and mine.floor_ms,
                note,
            )
        )
        row = self.results[-1]
        print(
            f"{case:<48} ours {_fmt(row.ours_ms):>9} ({row.ours_queries} q)  admin {_fmt(row.admin_ms):>9}"
            f"  floor {_fmt(row.floor_ms):>8}   [{time.monotonic() - started:.0f} s]",
            flush=True,
        )

    def page(self, query: str = "") -> Callable:
        return _expect(200, lambda: self.ours.get(f"/subscribers/{query}"))

    def admin_page(self, query: str = "") -> Callable:
        return _expect(200, lambda: self.admin.get(f"{ADMIN}{query}"))


def _fmt(ms: float | None) -> str:
    return "—" if ms is None else (f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.1f} ms")


def _names_by_frequency() -> tuple[tuple[str, int], tuple[str, int]]:
    """(rarest last name, its count), (most common last name, its count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT last_name, count(*) FROM {Subscriber._meta.db_table} "
            "WHERE last_name <> '' GROUP BY last_name ORDER BY count(*), last_name"
        )
        rows = cursor.fetchall()
    return rows[0], rows[-1]


def _vacuum() -> None:
    """Start from the same state each run: the previous run's bulk cases left a million dead row versions."""
    with connection.cursor() as cursor:
        for model in (Subscriber, SubscriberLabel):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def run_benchmark(
    *, repeat: int, smoke: bool, only: str | None, output: Path | None, bulk_repeat: int = 1
) -> list[Result]:
    _vacuum()
    load_before = os.getloadavg()
    with override_settings(
        ROOT_URLCONF="bench.urls",
        ALLOWED_HOSTS=["testserver"],
        # Static files from the sources: the benchmark needs no collectstatic.
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ):
        bench = Bench(repeat=repeat, smoke=smoke, bulk_repeat=bulk_repeat)
        _cases(bench, only)
    load_after = os.getloadavg()
    if output:
        # The load test (bench/loadtest.py) writes a section of its own: kept as it is.
        kept = kept_section(output.read_text()) if output.exists() else ""
        report = _report(bench.results, load_before, load_after, repeat=repeat, smoke=smoke, extra=bench.bulk_section)
        output.write_text(report + kept)
        print(f"Wrote {output}")
    return bench.results


def _cases(bench: Bench, only: str | None) -> None:
    def wanted(name):
        return not only or only.lower() in name.lower()

    # Loaded from the biggest share to the smallest; the bulk case's own label is not one of them.
    labels = list(Label.objects.exclude(name="bench_bulk").order_by("pk"))
    big = Label.objects.get(name=BIG_LABEL)
    small = labels[-1]
    any_three, all_two = [labels[2], labels[14], labels[99 % len(labels)]], [labels[0], labels[1]]

    def label_query(chosen, mode=None):
        query = "&".join(f"label={label.name}" for label in chosen)
        return f"?{query}&label_mode={mode}" if mode else f"?{query}"

    total = Subscriber.objects.count()
    deepest = max(1, min(REACHABLE_ROWS, total) // PER_PAGE)
    admin_deep = max(1, min(20_000, total // PER_PAGE))
    cases = [
        ("Subscribers, first page", bench.page(), bench.admin_page(), ""),
        (
            f"Subscribers, deepest page ({deepest})",
            bench.page(f"?page={deepest}"),
            bench.admin_page(f"?p={deepest}"),
            f"paging stops at {REACHABLE_ROWS:,} rows by design",
        ),
        (
            f"Admin only: page {admin_deep:,}",
            None,
            bench.admin_page(f"?p={admin_deep}"),
            f"our table stops at page {DEEPEST_PAGE}",
        ),
    ]
    sorts = [("name", "1.2"), ("channel", "3"), ("gender", "4"), ("locale", "5"), ("created", "7"), ("updated", "8")]
    cases += [(f"Sort by {sort}", bench.page(f"?sort={sort}"), bench.admin_page(f"?o={o}"), "") for sort, o in sorts]
    cases += [
        (
            f"Filter: big label ({big.subscribers.count():,})",
            bench.page(label_query([big])),
            bench.admin_page(f"?labels__id__exact={big.pk}"),
            "",
        ),
        (
            f"Filter: small label ({small.subscribers.count():,})",
            bench.page(label_query([small])),
            bench.admin_page(f"?labels__id__exact={small.pk}"),
            "",
        ),
        (
            "Filter: any of 3 labels",
            bench.page(label_query(any_three, "any")),
            bench.admin_page(f"?labels__id__in={','.join(str(label.pk) for label in any_three)}"),
            "admin: labels__id__in",
        ),
        ("Filter: all of 2 labels", bench.page(label_query(all_two, "all")), None, "the admin has no such filter"),
        ("Filter: none of 1 label (big)", bench.page(label_query([big], "none")), None, "the admin has no such filter"),
    ]
    (rare, rare_count), (common, common_count) = _names_by_frequency()
    cases += [
        (
            f"Search: rare name “{rare}” ({rare_count:,})",
            bench.page(f"?q={rare}"),
            bench.admin_page(f"?q={rare}"),
            "",
        ),
        (
            f"Search: common name “{common}” ({common_count:,})",
            bench.page(f"?q={common}"),
            bench.admin_page(f"?q={common}"),
            "",
        ),
        (
            "Labels page with counts",
            _expect(200, lambda: bench.ours.get("/labels/")),
            _expect(200, lambda: bench.admin.get("/baseline-admin/labels/label/")),
            "",
        ),
        (
            "Labels page sorted by count",
            _expect(200, lambda: bench.ours.get("/labels/?sort=-subscriber_count")),
            _expect(200, lambda: bench.admin.get("/baseline-admin/labels/label/?o=-4")),
            "",
        ),
    ]
    subscriber = Subscriber.objects.filter(channel__name="messenger").order_by("pk").first()
    cases += [
        (
            "Manage labels dialog: open",
            _expect(200, lambda: bench.ours.get(f"/subscribers/{subscriber.pk}/labels/", headers=HTMX)),
            _expect(200, lambda: bench.admin.get(f"{ADMIN}{subscriber.pk}/change/")),
            "admin: the change form",
        ),
        ("Manage labels dialog: submit", _dialog_submit(bench, subscriber, small), None, "one label toggled"),
    ]
    cases += [
        (
            "API: subscriber list",
            _expect(200, lambda: bench.api.get("/api/v1/subscribers")),
            bench.admin_page("?o=8"),
            "admin: changelist by updated",
        ),
        (
            "API: subscriber list, big label",
            _expect(200, lambda: bench.api.get(f"/api/v1/subscribers?label={big.name}")),
            bench.admin_page(f"?o=8&labels__id__exact={big.pk}"),
            "",
        ),
        ("API: upsert", _api_upsert(bench, subscriber), None, "an existing subscriber, one field changed"),
    ]
    for name, ours, admin, note in cases:
        if wanted(name):
            bench.add(name, ours, admin, note=note)
    if wanted("Bulk"):
        _bulk(bench, big)


def _dialog_submit(bench: Bench, subscriber: Subscriber, label: Label) -> Callable:
    """Each submit adds `label` or takes it away again, as an operator ticking one box would."""
    shown = set(subscriber.labels.values_list("pk", flat=True))

    def submit():
        nonlocal shown
        chosen = shown ^ {label.pk}
        response = bench.ours.post(
            f"/subscribers/{subscriber.pk}/labels/",
            {"labels": sorted(chosen), "labels_before": sorted(shown)},
            headers=HTMX,
        )
        shown = chosen
        return response

    return _expect(204, submit)


def _api_upsert(bench: Bench, subscriber: Subscriber) -> Callable:
    names = iter(["Ada", "Grace"] * 1000)

    def upsert():
        return bench.api.put(
            f"/api/v1/channels/messenger/subscribers/{subscriber.foreign_id}",
            json.dumps({"first_name": next(names)}),
            content_type="application/json",
        )

    return _expect(200, upsert)


def _bulk(bench: Bench, big: Label) -> None:
    """Add a label to everyone carrying the big label (the page's filter), then remove it, in chunks.

    bench/bulk_chunked.py measures it against the floor (one bare statement of the same pairs),
    the bot's upserts meanwhile and the API list afterwards; its section goes into the report.
    """
    from bench import bulk_chunked

    report = bulk_chunked.run_all(runs=bench.bulk_repeat, smoke=bench.smoke)
    bench.bulk_section = bulk_chunked.section(report)
    target = Label.objects.get(name=bulk_chunked.TARGET_LABEL)
    selection = {"filters": {"label": [big.name]}}
    selected = report["compare"]["selected"]
    sample = 20 if bench.smoke else 1000
    naive = _naive_admin_action(target, selection, sample)
    for kind, ours_ms, floor_ms, note in bulk_chunked.rows(report):
        bench.results.append(
            Result(
                f"Bulk {kind} one label on {selected:,} subscribers",
                ours_ms,
                None,
                _ms(naive[kind] * selected / sample),
                None,
                floor_ms,
                f"{note}; admin: a loop of labels.{kind}() timed on {sample:,} subscribers and extrapolated",
            )
        )
        row = bench.results[-1]
        print(f"{row.case:<48} ours {_fmt(row.ours_ms):>9}  admin {_fmt(row.admin_ms):>9}", flush=True)


def _naive_admin_action(target: Label, selection: dict, sample: int) -> dict:
    """What the first admin action people write costs per subscriber: `labels.add()` in a loop."""
    chosen = list(subscribers_matching(selection).order_by("pk")[:sample])
    timings = {}
    with transaction.atomic():
        started = time.perf_counter()
        for subscriber in chosen:
            subscriber.labels.add(target)
        timings["add"] = time.perf_counter() - started
        started = time.perf_counter()
        for subscriber in chosen:
            subscriber.labels.remove(target)
        timings["remove"] = time.perf_counter() - started
        # Only timing was wanted: leave the data (and any counters) exactly as they were.
        transaction.set_rollback(True)
    return timings


def _machine() -> str:
    memory = "?"
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), {memory} RAM, PostgreSQL {version} (shared_buffers {buffers})"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _ratio(numerator, denominator) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "—"
    return f"{numerator / denominator:,.1f}x"


def _report(results, load_before, load_after, *, repeat: int, smoke: bool, extra: str = "") -> str:
    subscribers, assignments = Subscriber.objects.count(), SubscriberLabel.objects.count()
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (bench/run.py); do not edit the table by hand.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_commit()}",
        f"- Machine: {_machine()}",
        f"- Load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after",
        f"- Data: {subscribers:,} subscribers, {Label.objects.count()} labels, {assignments:,} assignments"
        + (" (smoke run)" if smoke else ""),
        f"- Each page: median of {repeat} requests after one warm-up, through the whole Django stack "
        "(in-process test client, logged in, DEBUG off).",
        "- Admin: a plain ModelAdmin on its own AdminSite (bench/admin_baseline.py), same page size (25).",
        "- Floor: the case's most expensive SELECT run alone through the database cursor "
        "(for the bulk cases: one bare INSERT .. SELECT / DELETE of the same pairs, committed; "
        "see the section on bulk label changes in chunks).",
        "",
        "| case | ours | admin | SQL floor | admin ÷ ours | ours ÷ floor | queries (ours / admin) | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results:
        queries = f"{'—' if row.ours_queries is None else row.ours_queries} / "
        queries += "—" if row.admin_queries is None else str(row.admin_queries)
        lines.append(
            f"| {row.case} | {_fmt(row.ours_ms)} | {_fmt(row.admin_ms)} | {_fmt(row.floor_ms)} "
            f"| {_ratio(row.admin_ms, row.ours_ms)} | {_ratio(row.ours_ms, row.floor_ms)} | {queries} | {row.note} |"
        )
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip()]
    if extra:
        lines += ["", extra.strip()]
    return "\n".join(lines) + "\n"
