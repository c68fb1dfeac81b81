"""What every benchmark script shares: the environment, the database, timing, and its section of BENCHMARKS.md.

A leaf module: it imports nothing else of bench/, so bench/run.py, bench/cases.py, bench/bulk_chunked.py and
the other scripts all build on it without importing each other in a circle.
"""

import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hexasubs_bench"
# The smoke run has a database of its own, so it never replaces the million-subscriber data set.
SMOKE_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hexasubs_bench_smoke"
# The PostgreSQL settings printed beside every run: those that change a plan or a timing.
SETTINGS_SHOWN = (
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "random_page_cost",
    "effective_io_concurrency",
    "jit",
    "max_parallel_workers_per_gather",
    "max_wal_size",
    "synchronous_commit",
    "autovacuum",
)


def environment(*, smoke: bool = False) -> None:
    """Production-like settings (DEBUG off), without HTTPS redirects the test client would follow."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", SMOKE_DATABASE_URL if smoke else DEFAULT_DATABASE_URL)
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("DEBUG", "0")
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ.setdefault(name, "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hexasubs.settings")


def create_database_if_missing() -> None:
    """CREATE DATABASE for the configured default database unless it exists."""
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


# --- timing ----------------------------------------------------------------------------------------------


@dataclass
class Measured:
    median_ms: float
    queries: int
    floor_ms: float | None
    p95_ms: float = 0.0
    runs: list[float] = field(default_factory=list)


def ms(seconds: float) -> float:
    return seconds * 1000


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: with 9 values, p95 is the slowest of them (said so in the report)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def expect(status: int, call: Callable) -> Callable:
    """`call` wrapped so that an unexpected status stops the benchmark (a broken page is not fast)."""

    def checked():
        response = call()
        if response.status_code != status:
            body = response.content[:500].decode(errors="replace")
            raise AssertionError(f"Expected {status}, got {response.status_code}: {body}")
        return response

    return checked


def measure(call: Callable, repeat: int, *, warm: int = 1, floor: bool = True) -> Measured:
    """`call` timed `repeat` times after `warm` untimed calls: median, p95, its query count, and the floor
    (its slowest SELECT run alone), each timing wall clock around the whole call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warm):
        call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    with CaptureQueriesContext(connection) as captured:
        call()
    return Measured(
        ms(statistics.median(times)),
        len(captured),
        _floor(captured.captured_queries, repeat) if floor else None,
        ms(percentile(times, 95)),
        [ms(t) for t in times],
    )


def _floor(queries: list[dict], repeat: int) -> float | None:
    """The most expensive SELECT of the request, re-run alone through the cursor (median of `repeat` runs)."""
    selects = [query["sql"] for query in queries if query["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    if not selects:
        return None
    # Each statement's median of three, not one run: one noisy run must not pick a trivial statement.
    slowest = max(selects, key=lambda sql: statistics.median(_run_once(sql) for _ in range(3)))
    return ms(statistics.median(_run_once(slowest) for _ in range(max(3, repeat))))


def _run_once(sql: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql)
        cursor.fetchall()
        return time.perf_counter() - started


# --- the database's state and settings -------------------------------------------------------------------


def vacuum_analyze(*tables: str) -> float:
    """VACUUM ANALYZE of `tables` (all of the database's when none are named); seconds taken.

    The machine's PostgreSQL runs with autovacuum off: without this, one case's dead rows and stale
    statistics would make the next one slow.
    """
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        if tables:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def pg_settings() -> dict[str, str]:
    """The settings of SETTINGS_SHOWN as PostgreSQL shows them, and its version."""
    from django.db import connection

    shown = {}
    with connection.cursor() as cursor:
        for name in ("server_version", *SETTINGS_SHOWN):
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    return shown


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


# --- sections of BENCHMARKS.md ---------------------------------------------------------------------------


def replace_section(document: str, name: str, text: str, *, legacy_start: int | None = None) -> str:
    """`document` with the section between `<!-- name -->` and `<!-- /name -->` replaced by `text`.

    Every other line is kept as it is. Without the markers, the lines from `legacy_start` to the next
    `<!--` marker line (an older copy of the section written without markers) are replaced; without
    that either, the section goes at the start.
    """
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    lines = document.splitlines()
    block = [begin, *text.strip("\n").splitlines(), end]
    if begin in lines and end in lines[lines.index(begin) :]:
        start = lines.index(begin)
        stop = lines.index(end, start) + 1
    elif legacy_start is not None and legacy_start < len(lines):
        start = legacy_start
        stop = next((i for i in range(start, len(lines)) if lines[i].startswith("<!--")), len(lines))
    else:
        start = stop = 0
    before, after = lines[:start], lines[stop:]
    while before and not before[-1].strip():
        before.pop()
    while after and not after[0].strip():
        after.pop(0)
    out = [*before, *([""] if before else []), *block, *([""] if after else []), *after]
    return "\n".join(out) + "\n"


def write_section(path: Path, name: str, text: str, *, heading: str) -> None:
    """Put `text` between `<!-- name -->` and `<!-- /name -->` in the file at `path`, keeping every other line.

    A copy of the section written without markers (from its `heading` line to the next marker or `## `
    heading) is replaced; a section met for the first time goes at the end of the file.
    """
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = document.splitlines()
    if f"<!-- {name} -->" not in lines:
        if heading in lines:
            start = lines.index(heading)
            stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "<!--"))), len(lines))
            lines[start:stop] = [f"<!-- {name} -->", f"<!-- /{name} -->"]
        else:
            lines += ["", f"<!-- {name} -->", f"<!-- /{name} -->"]
        document = "\n".join(lines) + "\n"
    path.write_text(replace_section(document, name, text), encoding="utf-8")


def insert_after(document: str, after_name: str, name: str, text: str) -> str:
    """The section `name` replaced where it is, or put right after the section `after_name` if new."""
    begin = f"<!-- {name} -->"
    if begin in document.splitlines():
        return replace_section(document, name, text)
    anchor = f"<!-- /{after_name} -->"
    lines = document.splitlines()
    at = lines.index(anchor) + 1 if anchor in lines else len(lines)
    before, after = lines[:at], lines[at:]
    while before and not before[-1].strip():
        before.pop()
    while after and not after[0].strip():
        after.pop(0)
    block = [begin, *text.strip("\n").splitlines(), f"<!-- /{name} -->"]
    out = [*before, *([""] if before else []), *block, *([""] if after else []), *after]
    return "\n".join(out) + "\n"
