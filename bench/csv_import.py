"""CSV import and export at a million rows (issue 13): our import against the database's floor, the bot meanwhile.

    make bench-csv                                   # 1,000,000 rows on PostgreSQL, prints the section
    make bench-csv BENCH_CSV_ARGS=--write            # ... and replaces its section of BENCHMARKS.md
    .venv/bin/python bench/csv_import.py --smoke     # 2,000 rows, seconds

PostgreSQL at DATABASE_URL (default the database hexasubs_bench_csv, created if missing, emptied at each
run: it is this benchmark's own). Files in /tmp/hexasubs-bench-csv (kept, so later runs skip writing them).

1. The floor: the same rows into the same empty tables by the database alone: one COPY of the CSV file
   (PostgreSQL parses it), one INSERT .. SELECT of the subscribers, one of their labels. No checks, no
   history, no progress, nothing resumable: the least a database can do for this file.
2. Our import of the file (1,000,000 new subscribers with labels) through `run_subscriber_import`, as a
   worker runs it, from the stored file to the staged rows deleted: wall clock, each stage apart.
   Both record the labels as given by an operator (`assigned_by`, a foreign key checked on every row), as an
   import started from the console does: without one, each assignment skips a check.
3. The same file again: nothing changes, and it says so.
4. The export of every subscriber through the whole Django stack (the download view, streamed): time to
   the first byte and to the first rows, rows/s, and the peak of Python's memory (tracemalloc) for all
   the rows and for a tenth of them: flat means it does not grow with the rows.
5. The bot and an operator during an import: `PUT /api/v1/channels/…/subscribers/…` through the test
   client (the subscriber being imported), and the Subscribers page every fifth call, idle and then
   while `manage.py import_subscribers` changes every subscriber's first name in another process.
6. SQLite (--sqlite-rows, default 100,000): `manage.py import_subscribers` into a fresh SQLite file.
"""

import argparse
import os
import random
import subprocess
import sys
import textwrap
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hexasubs_bench_csv"
FILES = Path("/tmp/hexasubs-bench-csv")
SECTION = "## CSV import and export (issue 13)"
LABELS = 20
HEADER = (
    "channel,foreign_id,first_name,last_name,gender,locale,timezone,country,labels,created_at,updated_at,last_seen_at"
)


def _environment():
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("IMPORT_DIR", str(FILES / "imports"))
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        os.environ.setdefault(name, "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hexasubs.settings")


# --- the files ---------------------------------------------------------------------------------------


def write_file(path: Path, rows: int, *, renamed: bool = False) -> Path:
    """`rows` subscribers in the export's format, the same at every run; `renamed` changes every first name."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(13)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    locales = [("fr-FR", "FR", "1"), ("en-US", "US", "-5"), ("en-GB", "GB", "0"), ("de-DE", "DE", "Europe/Berlin")]
    channels = ["messenger"] * 6 + ["web"] * 3 + ["console"]
    partial = path.with_suffix(".part")
    with open(partial, "w", encoding="utf-8", newline="") as file:
        file.write(HEADER + "\r\n")
        for number in range(rows):
            locale, country, zone = locales[number % 4]
            labels = "|".join(sorted({f"segment_{rng.randint(1, LABELS)}" for _ in range(rng.randint(0, 3))}))
            created = start + timedelta(seconds=number * 17)
            first = f"{'Renamed' if renamed else 'First'}{number % 4001}"
            file.write(
                f"{channels[number % 10]},bench-{number:08d},{first},Last{number % 3989},"
                f"{'female' if number % 2 else 'male'},{locale},{zone},{country},{labels},"
                f"{created.isoformat()},{(created + timedelta(days=3)).isoformat()},\r\n"
            )
    partial.rename(path)
    return path


# --- the database -----------------------------------------------------------------------------------


def reset():
    """Empty the benchmark's database of subscribers, labels and imports; create the labels again."""
    from django.db import connection

    from labels.models import Label
    from subscribers.models import (
        LabelOperation,
        LabelOperationMember,
        Subscriber,
        SubscriberImport,
        SubscriberImportProblem,
        SubscriberImportRow,
    )
    from webhooks.models import Delivery

    tables = [
        model._meta.db_table
        for model in (
            Subscriber,
            LabelOperation,
            LabelOperationMember,
            SubscriberImport,
            SubscriberImportRow,
            SubscriberImportProblem,
            Label,
            Delivery,
        )
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    Label.objects.bulk_create(Label(title=f"Segment {n}", name=f"segment_{n}") for n in range(1, LABELS + 1))
    vacuum()


def vacuum():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def operator():
    """Who runs the imports: their id goes with every label given, as an operator's import records it (floor too)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="bench-operator")[0]


def floor(path: Path) -> dict:
    """The database alone: COPY the CSV, insert the subscribers, insert their labels, in one transaction."""
    from django.db import connection, transaction

    by = operator().pk
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_csv (channel text, foreign_id text, first_name text, last_name text, "
            "gender text, locale text, timezone text, country text, labels text, created_at timestamptz, "
            "updated_at timestamptz, last_seen_at timestamptz) ON COMMIT DROP"
        )
        with open(path, "rb") as source, cursor.copy("COPY bench_csv FROM STDIN (FORMAT csv, HEADER true)") as copy:
            while data := source.read(1024 * 1024):
                copy.write(data)
        copied = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO subscribers_subscriber (channel_id, foreign_id, first_name, last_name, gender, locale,
                timezone, country, search_name, avatar_url, created_at, updated_at, last_seen_at)
            SELECT c.id, b.foreign_id, b.first_name, b.last_name, b.gender, b.locale, b.timezone, b.country,
                   lower(b.first_name || ' ' || b.last_name), '', b.created_at, b.updated_at, b.last_seen_at
            FROM bench_csv b JOIN subscribers_channel c ON c.name = b.channel
            """
        )
        inserted = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO subscribers_subscriberlabel (subscriber_id, label_id, assigned_at, assigned_by_id)
            SELECT s.id, l.id, now(), %s FROM bench_csv b
            JOIN subscribers_subscriber s ON s.foreign_id = b.foreign_id
            CROSS JOIN LATERAL unnest(string_to_array(b.labels, '|')) AS n(name)
            JOIN labels_label l ON l.name = n.name
            """,
            [by],
        )
        labelled = time.perf_counter()
    done = time.perf_counter()
    return {
        "wall": done - started,
        "copy": copied - started,
        "subscribers": inserted - copied,
        "labels": labelled - inserted,
        "commit": done - labelled,
    }


def ours(path: Path, *, create_labels=False) -> dict:
    """Our import as a worker runs it: store the file, record it, run every chunk; stage times apart."""
    from subscribers import actions, imports
    from subscribers.models import SubscriberImport

    started = time.perf_counter()
    with open(path, "rb") as source:
        job = imports.record_upload(imports.store_file(source, path.name))
    job.create_labels = create_labels
    job.save()
    stored = time.perf_counter()
    marks = {}

    def mark(job_id):
        stage = SubscriberImport.objects.values_list("stage", flat=True).get(pk=job_id)
        marks.setdefault(stage, time.perf_counter())

    actions.start_subscriber_import(job, dry_run=False, by=operator(), background=False)
    job = actions.run_subscriber_import(job.pk, after_chunk=mark)
    done = time.perf_counter()
    (imports.import_dir() / job.file_name).unlink()  # a copy of the file per run would fill the disk
    merging = marks.get("merging", done)
    return {
        "wall": done - started,
        "store": stored - started,
        "reading": merging - stored,
        "merging": done - merging,
        "rows": job.rows_read,
        "summary": job.summary(),
        "status": job.status,
    }


# --- export -----------------------------------------------------------------------------------------


def export(client, rows: int) -> dict:
    """The download view streamed through the whole stack: first byte, first rows, rows/s, memory peaks."""

    def run(query, *, trace):
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        response = client.get(f"/subscribers/export/download/{query}")
        chunks = iter(response.streaming_content)
        first = next(chunks)
        first_byte = time.perf_counter() - started
        second = next(chunks, b"")
        first_rows = time.perf_counter() - started
        size, lines = len(first) + len(second), second.count(b"\n")
        for chunk in chunks:
            size += len(chunk)
            lines += chunk.count(b"\n")
        wall = time.perf_counter() - started
        peak = None
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        response.close()
        return {
            "first_byte": first_byte,
            "first_rows": first_rows,
            "wall": wall,
            "rows": lines,
            "bytes": size,
            "peak": peak,
        }

    timed = run("", trace=False)
    assert timed["rows"] == rows, (timed["rows"], rows)
    everyone = run("", trace=True)
    tenth = run("?filters=label%3Dsegment_1&all_matching=1", trace=True)
    return {**timed, "peak_all": everyone["peak"], "peak_tenth": tenth["peak"], "tenth_rows": tenth["rows"]}


# --- the bot ----------------------------------------------------------------------------------------


def _pct(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, min(len(ordered), -(-q * len(ordered) // 100))) - 1]


class Bot:
    """The bot runtime and an operator: an API upsert of an imported subscriber, a page load every fifth call."""

    def __init__(self, api, page, rows):
        self.api, self.page, self.rows = api, page, rows
        self.random = random.Random(7)
        self.calls = 0

    def call(self):
        number = self.random.randrange(self.rows)
        channel = ["messenger"] * 6 + ["web"] * 3 + ["console"]
        self.calls += 1
        started = time.perf_counter()
        response = self.api.put(
            f"/api/v1/channels/{channel[number % 10]}/subscribers/bench-{number:08d}",
            {"last_name": f"Bot{self.calls % 2}"},
            content_type="application/json",
        )
        upsert = time.perf_counter() - started
        assert response.status_code in (200, 201), response.content
        page = None
        if self.calls % 5 == 0:
            started = time.perf_counter()
            response = self.page.get("/subscribers/?label=segment_1")
            page = time.perf_counter() - started
            assert response.status_code == 200, response.status_code
        time.sleep(0.02)
        return upsert, page


def bot_during_import(api, page, path_renamed: Path, rows: int, *, idle_calls: int, log) -> dict:
    bot = Bot(api, page, rows)
    idle = [bot.call() for _ in range(idle_calls)]
    environment = {**os.environ}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_subscribers", str(path_renamed)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    during = []
    while process.poll() is None:
        during.append(bot.call())
    output = process.stdout.read()
    wall = time.perf_counter() - started
    log(f"  the import in another process took {wall:.1f} s: {output.strip().splitlines()[-1]}")

    def stats(calls):
        upserts = [u for u, _ in calls]
        pages = [p for _, p in calls if p is not None]
        return {
            "upserts": len(upserts),
            "p50": _pct(upserts, 50),
            "p99": _pct(upserts, 99),
            "max": max(upserts),
            "over_1s": sum(1 for u in upserts if u > 1),
            "pages": len(pages),
            "page_p50": _pct(pages, 50),
            "page_p99": _pct(pages, 99),
        }

    return {"idle": stats(idle), "during": stats(during), "import_wall": wall, "output": output}


# --- SQLite -----------------------------------------------------------------------------------------


def sqlite(path: Path, rows: int, log) -> dict:
    """`manage.py import_subscribers` into a fresh SQLite file: the first import, then the same file again."""
    database = FILES / "bench.sqlite3"
    for leftover in FILES.glob("bench.sqlite3*"):
        leftover.unlink()
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=environment, check=True
    )
    subprocess.run([sys.executable, "-c", _SQLITE_LABELS], cwd=ROOT, env=environment, check=True)
    results = {}
    for run in ("new", "same"):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "manage.py", "import_subscribers", str(path)],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
        )
        results[run] = {"wall": time.perf_counter() - started, "summary": done.stdout.strip().splitlines()[-1]}
        log(f"  SQLite, {run}: {results[run]['wall']:.1f} s, {results[run]['summary']}")
    return results


_SQLITE_LABELS = f"""
import django; django.setup()
from labels.models import Label
Label.objects.bulk_create([Label(title=f"Segment {{n}}", name=f"segment_{{n}}") for n in range(1, {LABELS + 1})])
"""


def head(path: Path, rows: int) -> Path:
    """The first `rows` rows of a file (for SQLite)."""
    target = path.with_name(f"{path.stem}-first-{rows}.csv")
    if not target.exists():
        with open(path, encoding="utf-8", newline="") as source, open(target, "w", encoding="utf-8", newline="") as out:
            for number, line in enumerate(source):
                if number > rows:
                    break
                out.write(line)
    return target


# --- report -----------------------------------------------------------------------------------------


def _machine():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, {version} (shared_buffers {buffers})"


def _load(values):
    return ", ".join(f"{value:.1f}" for value in values)


def report(results, *, rows, command) -> str:
    r = results
    per_s = lambda count, seconds: f"{count / seconds:,.0f}"  # noqa: E731
    lines = [
        SECTION,
        "",
        f"Produced by `{command}` (bench/csv_import.py); figures from one run.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {r['machine']}",
        f"- Load average (1, 5, 15 min): {_load(r['load_before'])} before, {_load(r['load_after'])} after "
        "(the machine is shared: other work ran meanwhile)",
        f"- File: {rows:,} subscribers in the export's format, {r['size'] / 2**20:,.0f} MB, 0 to 3 of {LABELS} labels "
        f"each ({r['assignments']:,} assignments)",
        "",
        "| case | wall | rows/s | target | note |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    floor_, first, again = r["floor"], r["first"], r["again"]
    lines.append(
        f"| Floor: COPY + INSERT .. SELECT (database alone) | {floor_['wall']:.1f} s | "
        f"{per_s(rows, floor_['wall'])} | — | "
        f"COPY {floor_['copy']:.1f} s, subscribers {floor_['subscribers']:.1f} s, labels {floor_['labels']:.1f} s, "
        f"COMMIT {floor_['commit']:.1f} s |"
    )
    lines.append(
        f"| Import, {rows:,} new with labels | {first['wall']:.1f} s | {per_s(rows, first['wall'])} | ≥ 20,000 | "
        f"checking {first['reading']:.1f} s, importing {first['merging']:.1f} s; {first['wall'] / floor_['wall']:.1f}x "
        f"the floor; “{first['summary']}” |"
    )
    lines.append(
        f"| Same file again | {again['wall']:.1f} s | {per_s(rows, again['wall'])} | ≥ the first | "
        f"checking {again['reading']:.1f} s, importing {again['merging']:.1f} s; “{again['summary']}” |"
    )
    if r.get("bot"):
        bot = r["bot"]
        lines.append(
            f"| Import changing every first name, while the bot runs | {bot['import_wall']:.1f} s | "
            f"{per_s(rows, bot['import_wall'])} | — | `manage.py import_subscribers` in another process |"
        )
    exp = r["export"]
    lines.append(
        f"| Export, every subscriber (download view) | {exp['wall']:.1f} s | {per_s(exp['rows'], exp['wall'])} | "
        f"≥ 50,000 | first byte {exp['first_byte'] * 1000:.0f} ms, "
        f"first {5000:,} rows {exp['first_rows'] * 1000:.0f} ms; "
        f"Python's peak memory {exp['peak_all'] / 2**20:.1f} MB for {exp['rows']:,} rows, "
        f"{exp['peak_tenth'] / 2**20:.1f} MB for {exp['tenth_rows']:,} |"
    )
    for run, label in (("new", f"SQLite: import of {r['sqlite_rows']:,} new"), ("same", "SQLite: same file again")):
        if r.get("sqlite"):
            data = r["sqlite"][run]
            lines.append(
                f"| {label} | {data['wall']:.1f} s | {per_s(r['sqlite_rows'], data['wall'])} | ≥ 5,000 | "
                f"`manage.py import_subscribers` (process start and `django.setup()` included); “{data['summary']}” |"
            )
    if r.get("bot"):
        idle, during = r["bot"]["idle"], r["bot"]["during"]
        lines += [
            "",
            "The bot (`PUT /api/v1/channels/…/subscribers/…` of subscribers in the file, through the test client) "
            "and an operator (the Subscribers page filtered by a label, every fifth call), idle and during the "
            "import above:",
            "",
            "| phase | upserts | p50 | p99 | max | > 1 s | page loads | page p50 | page p99 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, data in (("idle", idle), ("during the import", during)):
            lines.append(
                f"| {name} | {data['upserts']:,} | {data['p50'] * 1000:.0f} ms | {data['p99'] * 1000:.0f} ms | "
                f"{data['max'] * 1000:.0f} ms | {data['over_1s']} | {data['pages']} | "
                f"{data['page_p50'] * 1000:.0f} ms | {data['page_p99'] * 1000:.0f} ms |"
            )
        lines.append("")
        lines.append(
            f"p99 during ÷ idle: upserts {during['p99'] / idle['p99']:.1f}x, "
            f"pages {during['page_p99'] / idle['page_p99']:.1f}x (target ≤ 2x)."
        )
    lines += ["", r.get("notes", "").strip(), ""]
    return "\n".join(lines)


def write_section(text: str, path: Path) -> None:
    """Replace this benchmark's section of BENCHMARKS.md (between its markers), leaving the others as they are."""
    from bench import harness

    harness.write_section(path, "csv", text, heading=SECTION)


def notes(r, rows) -> str:
    """The paragraphs under the tables: the targets met or not, and the floor, with this run's figures."""
    floor_, first, again, exp = r["floor"], r["first"], r["again"], r["export"]
    rate = lambda seconds: f"{rows / seconds:,.0f}"  # noqa: E731
    met = lambda value, target: "meets" if value >= target else "misses"  # noqa: E731
    text = (
        "Targets, and the floor that stops the first one. The floor (the database doing nothing but a COPY and two "
        "INSERT .. SELECT into the same indexed tables, one transaction, no history) reaches "
        f"{rate(floor_['wall'])} rows/s in this run; our import of {rows:,} new subscribers runs at "
        f"{rate(first['wall'])} rows/s, {first['wall'] / floor_['wall']:.1f}x the floor's time: checking every cell "
        f"in Python (channel, gender, locale, time zone, country, dates, label names, formula prefixes, the search "
        f"name) and staging the rows by COPY takes {first['reading']:.1f} s ({rate(first['reading'])} rows/s), "
        f"importing them {first['merging']:.1f} s, in chunks of 5,000 rows that each commit their progress (so a "
        "killed worker resumes and the bot never waits more than a chunk), with each label added also recorded as a "
        "member of the import's bulk change (the history and Undo). The floor's own inserts take "
        f"{floor_['subscribers'] + floor_['labels']:.1f} s and its single COMMIT {floor_['commit']:.1f} s (deferred "
        "foreign-key checks): most of an import's time is the database maintaining the subscriber table's nine "
        "indexes (a trigram index of the search name among them) and the assignments' four, which the floor pays "
        f"too. The same file again {met(rows / again['wall'], rows / first['wall'])} its target "
        f"({rate(again['wall'])} rows/s)"
    )
    if r.get("sqlite"):
        sqlite_rows = r["sqlite_rows"]
        new, same = (sqlite_rows / r["sqlite"][key]["wall"] for key in ("new", "same"))
        text += f"; SQLite {met(min(new, same), 5000)} its own ({new:,.0f} rows/s, {same:,.0f} again)"
    text += (
        f". The export streams its first byte in {exp['first_byte'] * 1000:.0f} ms and keeps Python's memory at "
        f"{exp['peak_all'] / 2**20:.0f} MB for {exp['rows']:,} rows as for {exp['tenth_rows']:,}, at "
        f"{exp['rows'] / exp['wall']:,.0f} rows/s (target 50,000): each row comes with its label ids joined by the "
        "database (string_agg, group_concat; the names are looked up once in Python: joining every assignment to "
        "its label for the name was most of the database's time), and only cells that may look like formulas go "
        "through `neutralise`."
    )
    if r.get("bot"):
        idle, during = r["bot"]["idle"], r["bot"]["during"]
        text += (
            f" The bot's p99 during the import is {during['p99'] / idle['p99']:.1f}x idle (pages "
            f"{during['page_p99'] / idle['page_p99']:.1f}x), {during['over_1s']} request(s) above 1 s."
        )
    return "\n".join(textwrap.wrap(text, 115)) + "\n\n" + HISTORY.strip()


HISTORY = """
Found on the way: the first full run took 271 s. The planner hashed the whole (growing) subscriber table for
every chunk, and an index on the staging table's import column let it read every staged row of the import for
each chunk: quadratic. The chunk now joins by index probes (hash and merge joins off inside the chunk), the
staging table has only its primary key (import, row), and the subscriber table is analysed (its size and join
columns) each time an import has doubled it. Later: the members of bulk changes lost three indexes that
duplicated others (five were written per label added), an import tells webhooks once per chunk
(`subscribers.imported`) instead of once per subscriber, and the export joins label ids in SQL.

Where an import's time goes (one import of 200,000 new rows, every SQL statement and COMMIT timed): checking
the rows in Python and staging them 22 %, the subscribers' INSERT 28 %, the labels' INSERT with their members
23 %, the COMMITs 20 % (deferred foreign-key checks: the channel, the subscriber, the label and the operator
of each row), the rest a few milliseconds a chunk. Tried, measured, and left out for want of gain: a larger
work_mem and a larger pending list for the trigram index (5.0 s against 5.1 s for the same 200,000 rows),
and chunks of 20,000 rows (36 s against 26 s for 200,000 rows: each chunk's statements slowed down more than
the commits saved). An import of new rows cannot go faster than the database writes them: the floor above is
that bound, with neither checks nor history, on one connection. What would take it further: checking the next
rows while the database writes the current ones (the two stages run one after the other because a repeated
subscriber's last row wins, which is known only once the whole file is read); several workers merging chunks
at once (a chunk's subscribers are its own once repeated rows are removed); for a first import into an empty
table, dropping the secondary indexes and building them once at the end.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help="rows in the file (default 1,000,000; 2,000 with --smoke)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sqlite-rows", type=int, help="rows for the SQLite import (default 100,000; 0 skips it)")
    parser.add_argument("--no-bot", action="store_true", help="skip the bot during an import")
    parser.add_argument("--write", action="store_true", help="replace this section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    rows = args.rows or (2_000 if args.smoke else 1_000_000)
    sqlite_rows = args.sqlite_rows if args.sqlite_rows is not None else (500 if args.smoke else 100_000)

    _environment()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client, override_settings

    from api.actions import create_api_key
    from bench.harness import create_database_if_missing
    from subscribers.models import SubscriberLabel

    def log(text):
        print(text, flush=True)

    create_database_if_missing()
    call_command("migrate", verbosity=0, interactive=False)
    path = write_file(FILES / f"subscribers-{rows}.csv", rows)
    renamed = write_file(FILES / f"subscribers-{rows}-renamed.csv", rows, renamed=True)
    results = {
        "load_before": os.getloadavg(),
        "machine": _machine(),
        "size": path.stat().st_size,
        "sqlite_rows": sqlite_rows,
    }

    log(f"Floor: {rows:,} rows by the database alone…")
    reset()
    results["floor"] = floor(path)
    log(f"  {results['floor']['wall']:.1f} s")
    reset()
    log("Our import…")
    results["first"] = ours(path)
    results["assignments"] = SubscriberLabel.objects.count()
    log(f"  {results['first']['wall']:.1f} s: {results['first']['summary']}")
    vacuum()
    log("The same file again…")
    results["again"] = ours(path)
    log(f"  {results['again']['wall']:.1f} s: {results['again']['summary']}")
    vacuum()

    User = get_user_model()
    admin = User.objects.filter(username="bench-csv").first() or User.objects.create_superuser(
        "bench-csv", password="x"
    )
    _key, full_key = create_api_key("Benchmark CSV", rate_limit_per_minute=10**9)
    # Static files from the sources (as bench/run.py): the pages need no collectstatic.
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES={**settings.STORAGES, "staticfiles": static}):
        page = Client()
        page.force_login(admin)
        log("Export…")
        results["export"] = export(page, rows)
        log(f"  {results['export']['wall']:.1f} s, first byte {results['export']['first_byte'] * 1000:.0f} ms")
        if not args.no_bot:
            log("The bot, idle and during an import in another process…")
            api = Client(headers={"Authorization": f"Bearer {full_key}"})
            results["bot"] = bot_during_import(api, page, renamed, rows, idle_calls=20 if args.smoke else 300, log=log)
    if sqlite_rows:
        log(f"SQLite, {sqlite_rows:,} rows…")
        results["sqlite"] = sqlite(head(path, sqlite_rows), sqlite_rows, log)
    results["load_after"] = os.getloadavg()
    results["notes"] = notes(results, rows)
    command = "make bench-csv" + (
        f' BENCH_CSV_ARGS="{" ".join(argv or sys.argv[1:])}"' if (argv or sys.argv[1:]) else ""
    )
    text = report(results, rows=rows, command=command)
    print()
    print(text)
    if args.write:
        write_section(text, ROOT / "BENCHMARKS.md")
        log("Wrote the section to BENCHMARKS.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
