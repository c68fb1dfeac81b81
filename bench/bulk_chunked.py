"""Bulk label changes in chunks (issue 10): the engine against the database's floor, the bot meanwhile.

    .venv/bin/python bench/bulk_chunked.py                  # 1,000,000 subscribers, 5 runs, prints the section
    .venv/bin/python bench/bulk_chunked.py --write          # ... and replaces its section of BENCHMARKS.md
    .venv/bin/python bench/bulk_chunked.py --chunk-size 20000 --runs 3 --no-bot --no-profile   # an experiment
    .venv/bin/python bench/bulk_chunked.py --smoke          # 2,000 subscribers, seconds

`make bench` runs the same measurements as its bulk cases (bench/cases.py `_bulk`).

1. Add, then remove, one label on everyone carrying the big label (half of everyone), the
   Subscribers page's filter `label=active_users`, through `start_label_operation` and
   `run_label_operation` as a worker runs them: wall clock from the start (the selection is
   counted) to the last chunk's COMMIT. Beside it, in the same run, the floor: one bare
   `INSERT .. SELECT .. ON CONFLICT DO NOTHING` (resp. one `DELETE`) of the same pairs, through
   the same filter's SQL, committed. The order alternates between runs; each case starts after
   `VACUUM ANALYZE` of the tables it writes, and the run's own operations are deleted between
   runs so every run starts from the same data.
2. The bot: `subscribers.actions.upsert_subscriber` (a real change of the first name) of
   subscribers in the very chunk being changed, timed one by one, idle and then while a bulk add
   and a bulk remove of 500,000 run in another process (its own connection). An operator's page
   load (`/subscribers/?label=...`) every fifth call. Changed names are put back afterwards.
3. The API list filtered by the biggest label (first page, and a page 90 % deep through the id
   cursor), through the Django test client with an API key, median of repeated requests; also
   right after a bulk add of the bench label, unvacuumed (the case that took 5.6 s before).
4. A profiled run: every statement of every chunk timed and grouped, the COMMIT timed apart,
   and EXPLAIN (ANALYZE, BUFFERS) of one chunk's statements (rolled back).
"""

import argparse
import bisect
import itertools
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Bulk label changes in chunks (issue 10)"
NOTES = Path(__file__).resolve().parent / "notes_bulk_chunked.md"
TARGET_LABEL = "bench_bulk"


# --- helpers ----------------------------------------------------------------------------------------


def _pct(values, q):
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _ms(seconds):
    return seconds * 1000


def _f(ms):
    if ms != ms:  # NaN
        return "—"
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:,.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def _s(seconds):
    return f"{seconds:,.2f} s"


def pg_settings() -> dict:
    from django.db import connection

    names = [
        "server_version",
        "shared_buffers",
        "max_wal_size",
        "synchronous_commit",
        "wal_level",
        "checkpoint_timeout",
        "work_mem",
        "effective_cache_size",
    ]
    with connection.cursor() as cursor:
        values = {}
        for name in names:
            cursor.execute(f"SHOW {name}")
            values[name] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
        values["pg_stat_statements"] = "installed" if cursor.fetchone()[0] else "not installed"
    return values


def _checkpoints() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
        return cursor.fetchone()[0]


def vacuum(tables=None) -> float:
    from django.db import connection

    from subscribers.models import LabelOperation, LabelOperationMember, SubscriberLabel

    started = time.perf_counter()
    tables = tables or [SubscriberLabel, LabelOperationMember, LabelOperation]
    with connection.cursor() as cursor:
        for model in tables:
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return time.perf_counter() - started


def forget_operations(operation_ids) -> None:
    """Delete the bench's own operations and their members: each run starts from the same data."""
    from django.db import connection, transaction

    from subscribers.models import LabelOperation, LabelOperationMember

    if not operation_ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {LabelOperationMember._meta.db_table} WHERE operation_id = ANY(%s)", [list(operation_ids)]
        )
        LabelOperation.objects.filter(pk__in=operation_ids).delete()


# --- 1. ours against the floor ----------------------------------------------------------------------


def run_ours(kind, target, selection, by, *, progress=None):
    """One bulk operation as a worker runs it; wall clock to the last chunk's COMMIT, and each chunk's."""
    from subscribers import actions
    from subscribers.models import LabelOperation, LabelSource

    marks = []

    def after_chunk(_operation_id):
        marks.append(time.perf_counter())
        if progress is not None:
            progress.value = low + len(marks) * actions.CHUNK_SIZE

    started = time.perf_counter()
    operation = actions.start_label_operation(kind, [target], by=by, source=LabelSource.BULK, selection=selection)
    low = operation.last_subscriber_id
    if progress is not None:
        progress.value = low
    counted = time.perf_counter()
    operation = actions.run_label_operation(operation.pk, after_chunk=after_chunk)
    finished = time.perf_counter()
    # The last chunk (the one that finds nothing more to do) calls no after_chunk: it ends at `finished`.
    edges = [counted, *marks, finished]
    chunks = [b - a for a, b in itertools.pairwise(edges)]
    if operation.status != LabelOperation.Status.DONE:
        raise AssertionError(f"operation {operation.pk} ended {operation.status}: {operation.error}")
    return {
        "wall": finished - started,
        "start": counted - started,
        "chunks": chunks,
        "changed": operation.changed_count,
        "selected": operation.selected_count,
        "operation": operation.pk,
    }


def floor_sql(kind, target, selection, by):
    from django.db import connection

    from subscribers.models import SubscriberLabel
    from subscribers.queries import subscribers_matching

    chosen, params = subscribers_matching(selection).values("pk").query.sql_with_params()
    table = connection.ops.quote_name(SubscriberLabel._meta.db_table)
    if kind == "add":
        return (
            f"INSERT INTO {table} (subscriber_id, label_id, assigned_at, assigned_by_id) "
            f"SELECT chosen.id, %s, now(), %s FROM ({chosen}) AS chosen(id) "
            "ON CONFLICT (label_id, subscriber_id) DO NOTHING",
            [target.pk, by.pk if by else None, *params],
        )
    return (f"DELETE FROM {table} WHERE label_id = %s AND subscriber_id IN ({chosen})", [target.pk, *params])


def run_floor(kind, target, selection, by):
    """The same pairs in one bare statement, committed: what no implementation can beat."""
    from django.db import connection, transaction

    sql, params = floor_sql(kind, target, selection, by)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        changed = cursor.rowcount
    return {"wall": time.perf_counter() - started, "changed": changed}


def compare(target, selection, by, *, runs, log=print):
    """`runs` times: ours add, ours remove, floor add, floor remove (the order alternates), each after VACUUM."""
    from subscribers.queries import subscribers_matching

    selected = subscribers_matching(selection).count()
    results = {("ours", "add"): [], ("ours", "remove"): [], ("floor", "add"): [], ("floor", "remove"): []}
    vacuums = []
    for number in range(runs):
        order = ["ours", "floor"] if number % 2 == 0 else ["floor", "ours"]
        operations = []
        for who in order:
            for kind in ("add", "remove"):
                vacuums.append(vacuum())
                result = (run_ours if who == "ours" else run_floor)(kind, target, selection, by)
                if result["changed"] != selected:
                    raise AssertionError(f"{who} {kind} changed {result['changed']:,}, expected {selected:,}")
                results[(who, kind)].append(result)
                if who == "ours":
                    operations.append(result["operation"])
                    chunks = result["chunks"]
                    extra = f" ({len(chunks)} chunks, max {_f(_ms(max(chunks)))}, start {_f(_ms(result['start']))})"
                else:
                    extra = ""
                log(f"  run {number + 1}/{runs} {who:5} {kind:6} {_s(result['wall'])}{extra}", flush=True)
        forget_operations(operations)
    vacuums.append(vacuum())
    return {"selected": selected, "runs": runs, "results": results, "vacuum": vacuums}


# --- 2. the bot meanwhile ----------------------------------------------------------------------------


def _bulk_child(kind, target_pk, selection, by_pk, progress, queue, chunk_size):
    from django.contrib.auth.models import User
    from django.db import connections

    from labels.models import Label
    from subscribers import actions

    connections.close_all()  # never the parent's socket
    actions.CHUNK_SIZE = chunk_size
    try:
        by = User.objects.get(pk=by_pk) if by_pk else None
        queue.put(run_ours(kind, Label.objects.get(pk=target_pk), selection, by, progress=progress))
    except BaseException as error:  # reported to the parent, which raises
        queue.put({"error": repr(error)})
    finally:
        connections.close_all()


class Bot:
    """Calls upsert_subscriber for carriers of the selection, one at a time, and times each call."""

    def __init__(self, selection, *, pace, page_client=None, page_url=None, seed=42):
        from subscribers.models import Channel
        from subscribers.queries import subscribers_matching

        rows = list(subscribers_matching(selection).order_by("pk").values_list("pk", "channel_id", "foreign_id"))
        self.ids = [row[0] for row in rows]
        self.rows = rows
        self.channels = {channel.pk: channel for channel in Channel.objects.all()}
        self.pace, self.page_client, self.page_url = pace, page_client, page_url
        self.random = random.Random(seed)
        self.originals = {}
        self.calls = 0

    def _pick(self, low=None, width=None):
        if low is None:
            return self.rows[self.random.randrange(len(self.rows))]
        start = bisect.bisect_right(self.ids, low)
        end = bisect.bisect_right(self.ids, low + width)
        if start >= end:
            return self.rows[min(start, len(self.rows) - 1)]
        return self.rows[self.random.randrange(start, end)]

    def _remember(self, pk):
        from subscribers.models import Subscriber

        if pk not in self.originals:
            self.originals[pk] = Subscriber.objects.values_list("first_name", "updated_at", "last_seen_at").get(pk=pk)

    def call(self, low=None, width=None):
        """One upsert (and every fifth call one page load): (upsert seconds, page seconds or None)."""
        from subscribers.actions import upsert_subscriber

        pk, channel_id, foreign_id = self._pick(low, width)
        self._remember(pk)
        self.calls += 1
        name = "Ada" if self.calls % 2 else "Grace"
        started = time.perf_counter()
        upsert_subscriber(self.channels[channel_id], foreign_id, {"first_name": name})
        upsert = time.perf_counter() - started
        page = None
        if self.page_client is not None and self.calls % 5 == 0:
            started = time.perf_counter()
            response = self.page_client.get(self.page_url)
            page = time.perf_counter() - started
            assert response.status_code == 200, response.status_code
        time.sleep(self.pace)
        return upsert, page

    def restore(self):
        from django.db import connection, transaction

        from subscribers.models import Subscriber

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {Subscriber._meta.db_table} SET first_name = %s, updated_at = %s, last_seen_at = %s "
                "WHERE id = %s",
                [(*values, pk) for pk, values in self.originals.items()],
            )


def bot_during_bulk(
    target, selection, by, *, idle_calls, pace, page_client, page_url, api_during=None, near=True, log=print
):
    """The bot's upserts idle, then during a bulk add and a bulk remove run by another process."""
    from django.db import connections

    from subscribers import actions

    bot = Bot(selection, pace=pace, page_client=page_client, page_url=page_url)
    for _ in range(3):
        bot.call()  # warm-up
    idle = [bot.call() for _ in range(idle_calls)]
    phases = {"idle": {"upserts": [u for u, _ in idle], "pages": [p for _, p in idle if p is not None]}}
    load = {"idle": os.getloadavg()}
    context = multiprocessing.get_context("fork")
    operations = []
    api = None
    for kind in ("add", "remove"):
        vacuum()
        progress, queue = context.Value("q", 0), context.Queue()
        connections.close_all()
        child = context.Process(
            target=_bulk_child,
            args=(kind, target.pk, selection, by.pk if by else None, progress, queue, actions.CHUNK_SIZE),
        )
        child.start()
        calls, result = [], None
        while result is None:
            if progress.value:
                # A subscriber in the window the bulk change is working on right now.
                calls.append(bot.call(progress.value, actions.CHUNK_SIZE) if near else bot.call())
            else:
                time.sleep(0.005)
            if not child.is_alive() or not queue.empty():
                result = queue.get(timeout=60)
        child.join()
        if "error" in result:
            raise RuntimeError(f"bulk {kind} failed: {result['error']}")
        operations.append(result["operation"])
        load[kind] = os.getloadavg()
        phases[kind] = {
            "upserts": [u for u, _ in calls],
            "pages": [p for _, p in calls if p is not None],
            "bulk": result,
        }
        log(
            f"  bot during bulk {kind}: {len(calls)} upserts, p99 {_f(_ms(_pct(phases[kind]['upserts'], 99)))}, "
            f"bulk {_s(result['wall'])}",
            flush=True,
        )
        if kind == "add" and api_during is not None:
            api = api_during()  # the bench label freshly given to 500,000, not vacuumed
    bot.restore()
    forget_operations(operations)
    return {
        "phases": phases,
        "load": load,
        "api_after_add": api,
        "pace": pace,
        "touched": len(bot.originals),
        "near": near,
    }


# --- 3. the API list ---------------------------------------------------------------------------------


def api_list(client, label, *, repeat):
    """First page and a page 90 % deep (id cursor) of `GET /api/v1/subscribers?label=...`: median ms."""
    from bench.harness import expect as _expect
    from bench.harness import measure
    from subscribers.models import Subscriber

    carriers = Subscriber.objects.filter(labels=label).order_by("pk").values_list("pk", flat=True)
    count = carriers.count()
    deep = carriers[max(0, int(count * 0.9) - 1)] if count else 0
    from base64 import urlsafe_b64encode

    cursor = urlsafe_b64encode(f"id|{deep}".encode()).decode().rstrip("=")
    base = f"/api/v1/subscribers?label={label.name}"
    first = measure(_expect(200, lambda: client.get(base)), repeat)
    deep_page = measure(_expect(200, lambda: client.get(f"{base}&cursor={cursor}")), repeat)
    return {
        "label": label.name,
        "carriers": count,
        "first": (first.median_ms, first.floor_ms, first.queries),
        "deep": (deep_page.median_ms, deep_page.floor_ms, deep_page.queries),
    }


# --- 4. where the time goes --------------------------------------------------------------------------


def _statement_kind(sql):
    import re

    text = " ".join(sql.split())
    match = re.match(r'(INSERT INTO|DELETE FROM|UPDATE|SELECT .*? FROM|SELECT)\s*"?([\w.]*)"?', text, re.I)
    if not match:
        return text[:40]
    verb = match.group(1).upper()
    verb = "SELECT" if verb.startswith("SELECT") else verb
    if "pg_advisory_xact_lock" in text:
        return "SELECT pg_advisory_xact_lock"
    if " FOR UPDATE" in text:
        return f"SELECT .. FOR UPDATE {match.group(2)}"
    return f"{verb} {match.group(2)}".strip()


def profile(target, selection, by, *, log=print):
    """An add and a remove with every statement timed and grouped, the COMMIT timed on its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    profiles = {}
    operations = []
    for kind in ("add", "remove"):
        vacuum()
        # Django logs BEGIN and COMMIT as captured statements too: the COMMIT runs the deferred FK checks.
        with CaptureQueriesContext(connection) as captured:
            result = run_ours(kind, target, selection, by)
        operations.append(result["operation"])
        groups = defaultdict(lambda: [0, 0.0])
        for query in captured.captured_queries:
            group = groups[_statement_kind(query["sql"])]
            group[0] += 1
            group[1] += float(query["time"])
        statements = sum(seconds for _, seconds in groups.values())
        profiles[kind] = {
            "wall": result["wall"],
            "chunks": len(result["chunks"]),
            "groups": sorted(groups.items(), key=lambda item: -item[1][1]),
            "python": result["wall"] - statements,
        }
        commit = groups.get("COMMIT", [0, 0.0])
        log(f"  profiled {kind}: {_s(result['wall'])}, COMMIT {_s(commit[1])} over {commit[0]}", flush=True)
        if kind == "add":
            profiles["explain"] = explain_chunk(target, selection, by)
    forget_operations(operations)
    return profiles


def explain_chunk(target, selection, by):
    """EXPLAIN (ANALYZE, BUFFERS) of one chunk's statements (a middle window), deferred checks made immediate,
    rolled back. The bench label is carried by everyone selected here (the add just ran), so the chunk's
    INSERT is measured on a window it has been removed from first, inside the same rolled-back transaction."""
    from django.db import connection, transaction

    from subscribers import actions
    from subscribers.models import LabelOperationMember, Subscriber, SubscriberLabel
    from subscribers.queries import subscribers_matching

    high_id = Subscriber.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    low = (high_id // 2) // actions.CHUNK_SIZE * actions.CHUNK_SIZE
    high = low + actions.CHUNK_SIZE
    sl = connection.ops.quote_name(SubscriberLabel._meta.db_table)
    members = connection.ops.quote_name(LabelOperationMember._meta.db_table)
    plans = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {sl} WHERE label_id = %s AND subscriber_id > %s AND subscriber_id <= %s",
            [target.pk, low, high],
        )
        chosen = subscribers_matching(selection).filter(pk__gt=low, pk__lte=high).values("pk")
        sql, params = chosen.query.sql_with_params()
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        plans["select the chunk's ids"] = [row[0] for row in cursor.fetchall()]
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f"""EXPLAIN (ANALYZE, BUFFERS)
            INSERT INTO {sl} (subscriber_id, label_id, assigned_at, assigned_by_id)
            SELECT p.s, p.l, now(), %s FROM (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS u(s, l)) AS p
            WHERE true ON CONFLICT (label_id, subscriber_id) DO NOTHING RETURNING subscriber_id, label_id""",
            [by.pk if by else None, ids, [target.pk] * len(ids)],
        )
        plans[f"INSERT .. RETURNING {len(ids):,} pairs (FK checks immediate)"] = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""EXPLAIN (ANALYZE, BUFFERS)
            INSERT INTO {members} (operation_id, subscriber_id, label_id)
            SELECT 0, p.s, p.l FROM (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS u(s, l)) AS p""",
            [ids, [target.pk] * len(ids)],
        )
        plans["members INSERT"] = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""EXPLAIN (ANALYZE, BUFFERS)
            DELETE FROM {sl} WHERE (subscriber_id, label_id) IN
            (SELECT p.s, p.l FROM (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS u(s, l)) AS p)
            RETURNING subscriber_id, label_id""",
            [ids, [target.pk] * len(ids)],
        )
        plans["DELETE .. RETURNING"] = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return {"window": (low, high), "pairs": len(ids), "plans": plans}


# --- everything, and the report ----------------------------------------------------------------------


def run_all(
    *, runs, smoke, bot=True, profile_run=True, api_repeat=None, idle_calls=None, pace=0.02, near=True, log=print
):
    from django.contrib.auth.models import Group, User
    from django.test import Client, override_settings

    from api.actions import create_api_key
    from api.models import ApiKey
    from bench.load import BIG_LABEL
    from labels.models import Label
    from subscribers import actions
    from subscribers.models import Subscriber, SubscriberLabel

    report = {
        "settings": pg_settings(),
        "chunk_size": actions.CHUNK_SIZE,
        "subscribers": Subscriber.objects.count(),
        "smoke": smoke,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # The options that shape the measurement, not where its results were saved.
        "command": " ".join(["bench/bulk_chunked.py", *_measuring_options(sys.argv[1:])])
        if sys.argv[0].endswith("bulk_chunked.py")
        else "make bench",
        "cores": os.cpu_count(),
    }
    operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"first_name": "Bench"})
    operator.groups.add(*Group.objects.filter(name__in=["Operators", "Label managers"]))
    target, _ = Label.objects.get_or_create(name=TARGET_LABEL, defaults={"title": "Bench bulk"})
    big = Label.objects.get(name=BIG_LABEL)
    selection = {"filters": {"label": [big.name]}}
    report["assignments"] = SubscriberLabel.objects.count()
    report["first_vacuum"] = vacuum(None) + vacuum([Subscriber])
    report["load_before"] = os.getloadavg()
    checkpoints = _checkpoints()
    log(f"Bulk in chunks of {actions.CHUNK_SIZE:,}: {runs} runs against the floor…", flush=True)
    report["compare"] = compare(target, selection, operator, runs=runs, log=log) if runs else None
    report["checkpoints"] = _checkpoints() - checkpoints
    report["load_after_compare"] = os.getloadavg()

    ApiKey.objects.filter(name="Benchmark bulk").delete()
    _key, full_key = create_api_key("Benchmark bulk", rate_limit_per_minute=10**9)
    api_repeat = api_repeat or (2 if smoke else 9)
    with override_settings(
        ROOT_URLCONF="bench.urls",
        ALLOWED_HOSTS=["testserver"],
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ):
        api = Client(headers={"Authorization": f"Bearer {full_key}"})
        if bot:
            page = Client()
            page.force_login(operator)
            log("The bot's upserts idle and during a bulk add and remove…", flush=True)
            report["bot"] = bot_during_bulk(
                target,
                selection,
                operator,
                idle_calls=idle_calls or (10 if smoke else 300),
                pace=pace,
                page_client=page,
                page_url=f"/subscribers/?label={big.name}",
                api_during=lambda: api_list(api, target, repeat=api_repeat),
                near=near,
                log=log,
            )
        if profile_run:
            log("Profiled run…", flush=True)
            report["profile"] = profile(target, selection, operator, log=log)
        vacuum()
        report["api"] = api_list(api, big, repeat=api_repeat)
    ApiKey.objects.filter(name="Benchmark bulk").delete()
    report["load_after"] = os.getloadavg()
    assert not SubscriberLabel.objects.filter(label=target).exists(), "the bench label was left on someone"
    return report


def rows(report):
    """(kind, ours median ms, floor median ms, note) for bench/cases.py's table."""
    compare_ = report["compare"]
    out = []
    for kind in ("add", "remove"):
        ours = [r["wall"] for r in compare_["results"][("ours", kind)]]
        floor = [r["wall"] for r in compare_["results"][("floor", kind)]]
        chunks = [c for r in compare_["results"][("ours", kind)] for c in r["chunks"]]
        out.append(
            (
                kind,
                _ms(statistics.median(ours)),
                _ms(statistics.median(floor)),
                f"chunks of {report['chunk_size']:,}, wall clock incl. COMMIT, median of {len(ours)}; "
                f"max chunk {_f(_ms(max(chunks)))}; floor: one bare "
                f"{'INSERT .. SELECT .. ON CONFLICT DO NOTHING' if kind == 'add' else 'DELETE'}, committed",
            )
        )
    return out


def _measuring_options(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--save", "--render", "--write"):
            skip = arg != "--write"
        elif not arg.startswith(("--save=", "--render=", "--write=")):
            kept.append(arg)
    return kept


def section(report) -> str:
    s = report["settings"]
    compare_ = report["compare"]
    lb, la = report["load_before"], report["load_after"]
    lines = [
        SECTION,
        "",
        f"Produced by `{report['command']}` (bench/bulk_chunked.py; `make bench` runs it as its bulk cases); "
        "do not edit the tables by hand: the analysis below them is `bench/notes_bulk_chunked.md`.",
        "",
        f"- Date: {report['started']}; {report['cores']} cores shared with other engineers' test runs.",
        f"- Load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in lb)} before, "
        f"{', '.join(f'{x:.1f}' for x in report['load_after_compare'])} after the runs against the floor, "
        f"{', '.join(f'{x:.1f}' for x in la)} at the end.",
        f"- PostgreSQL {s['server_version'].split()[0]}, the default cluster: shared_buffers {s['shared_buffers']}, "
        f"max_wal_size {s['max_wal_size']}, synchronous_commit {s['synchronous_commit']}, "
        f"checkpoint_timeout {s['checkpoint_timeout']}, work_mem {s['work_mem']}, wal_level {s['wal_level']}; "
        f"pg_stat_statements {s['pg_stat_statements']}. {report['checkpoints']} checkpoint(s) during the runs "
        "against the floor.",
        f"- Data: {report['subscribers']:,} subscribers, {report['assignments']:,} assignments"
        + (" (smoke run)" if report["smoke"] else "")
        + f"; selection: the page's filter `label=active_users`, {compare_['selected']:,} subscribers; "
        f"CHUNK_SIZE {report['chunk_size']:,} ids (about "
        f"{compare_['selected'] // max(1, len(compare_['results'][('ours', 'add')][0]['chunks'])):,} "
        "selected subscribers a chunk); no webhook endpoint listening.",
        "- Each case starts after `VACUUM ANALYZE` of the assignments and operation tables; ours and the floor "
        "alternate which goes first; the runs' own operations are deleted between runs.",
        "",
        "### Ours against the floor (wall clock including COMMIT)",
        "",
        "| case | runs | ours median | ours p95 | floor median | floor p95 | ours ÷ floor (medians) | "
        "start (count) | chunks | chunk median | chunk p95 | chunk max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in ("add", "remove"):
        ours_runs = compare_["results"][("ours", kind)]
        ours = [r["wall"] for r in ours_runs]
        floor = [r["wall"] for r in compare_["results"][("floor", kind)]]
        chunks = [c for r in ours_runs for c in r["chunks"]]
        start = statistics.median(r["start"] for r in ours_runs)
        lines.append(
            f"| {kind} one label on {compare_['selected']:,} | {len(ours)} | {_s(statistics.median(ours))} | "
            f"{_s(_pct(ours, 95))} | {_s(statistics.median(floor))} | {_s(_pct(floor, 95))} | "
            f"{statistics.median(ours) / statistics.median(floor):.2f}x | {_f(_ms(start))} | "
            f"{len(ours_runs[0]['chunks'])} | {_f(_ms(statistics.median(chunks)))} | "
            f"{_f(_ms(_pct(chunks, 95)))} | {_f(_ms(max(chunks)))} |"
        )
    lines += [
        "",
        "Every run (seconds, in order): "
        + "; ".join(
            f"{who} {kind} " + ", ".join(f"{r['wall']:.2f}" for r in compare_["results"][(who, kind)])
            for who in ("ours", "floor")
            for kind in ("add", "remove")
        )
        + f". VACUUM ANALYZE between cases: median {_s(statistics.median(compare_['vacuum']))}.",
    ]
    bot = report.get("bot")
    if bot:
        lines += [
            "",
            "### The bot during a bulk change",
            "",
            "`upsert_subscriber` (a real change of the first name, in its own transaction) of "
            + (
                "a subscriber in the window of ids the bulk change is working on at that moment"
                if bot.get("near", True)
                else "a random subscriber of the selection"
            )
            + f", one call every {bot['pace'] * 1000:.0f} ms "
            "plus its own time, in the bench process; the bulk operation runs in another process with its own "
            "connection. Every fifth call also loads the operators' page `/subscribers/?label=active_users` "
            "(logged-in test client).",
            "",
            "| phase | load avg (1 min) at end | upserts | p50 | p99 | max | > 1 s | page loads | page p50 | "
            "page max | "
            "bulk wall | bulk max chunk |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        idle_p99 = _pct(bot["phases"]["idle"]["upserts"], 99)
        for phase in ("idle", "add", "remove"):
            data = bot["phases"][phase]
            ups, pages = data["upserts"], data["pages"]
            bulk = data.get("bulk")
            lines.append(
                f"| {'idle' if phase == 'idle' else f'during bulk {phase} of {bulk["changed"]:,}'} | "
                f"{bot['load'][phase][0]:.1f} | "
                f"{len(ups)} | {_f(_ms(_pct(ups, 50)))} | {_f(_ms(_pct(ups, 99)))} | {_f(_ms(max(ups)))} | "
                f"{sum(u > 1 for u in ups)} | {len(pages)} | {_f(_ms(_pct(pages, 50)))} | "
                f"{_f(_ms(max(pages))) if pages else '—'} | {_s(bulk['wall']) if bulk else '—'} | "
                f"{_f(_ms(max(bulk['chunks']))) if bulk else '—'} |"
            )
        during = bot["phases"]["add"]["upserts"] + bot["phases"]["remove"]["upserts"]
        lines += [
            "",
            f"p99 during ÷ idle p99: {_pct(during, 99) / idle_p99:.2f}x (target ≤ 2x); slowest upsert during: "
            f"{_f(_ms(max(during)))} (target: none above 1 s).",
        ]
    api = report.get("api")
    if api:
        lines += [
            "",
            "### API list filtered by a big label",
            "",
            "Median of repeated requests through the test client with an API key; floor: the slowest SELECT "
            "of the request run alone.",
            "",
            "| when | label (carriers) | first page | its SQL floor | page 90 % deep (id cursor) | its SQL floor |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        entries = [("after the bulk cases, vacuumed", api)]
        if bot and bot.get("api_after_add"):
            entries.insert(0, ("right after the bulk add, not vacuumed", bot["api_after_add"]))
        for when, entry in entries:
            lines.append(
                f"| {when} | `{entry['label']}` ({entry['carriers']:,}) | {_f(entry['first'][0])} | "
                f"{_f(entry['first'][1])} | {_f(entry['deep'][0])} | {_f(entry['deep'][1])} |"
            )
    prof = report.get("profile")
    if prof:
        lines += [
            "",
            "### Where the time goes (one profiled add and remove)",
            "",
            "Every statement timed (Django's query capture, which adds a little), grouped; COMMIT timed on its own "
            "(Django logs it as a statement; for the assignments it runs the deferred foreign-key checks); "
            "the rest is Python between statements.",
            "",
            "| statement | add: count | add: total | remove: count | remove: total |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        names = []
        for kind in ("add", "remove"):
            for name, _ in prof[kind]["groups"]:
                if name not in names:
                    names.append(name)
        by_kind = {kind: dict(prof[kind]["groups"]) for kind in ("add", "remove")}
        for name in names:
            cells = []
            for kind in ("add", "remove"):
                count, seconds = by_kind[kind].get(name, (0, 0.0))
                cells += [f"{count:,}", _f(_ms(seconds))]
            lines.append(f"| `{name}` | {' | '.join(cells)} |")
        lines.append(
            f"| Python between statements | | {_f(_ms(prof['add']['python']))} | "
            f"| {_f(_ms(prof['remove']['python']))} |"
        )
        lines.append(f"| **wall** | | **{_s(prof['add']['wall'])}** | | **{_s(prof['remove']['wall'])}** |")
        explain = prof.get("explain")
        if explain:
            lines += [
                "",
                f"EXPLAIN (ANALYZE, BUFFERS) of one chunk (ids {explain['window'][0]:,} to {explain['window'][1]:,}, "
                f"{explain['pairs']:,} pairs; rolled back, `SET CONSTRAINTS ALL IMMEDIATE` so the foreign-key "
                "checks show as triggers):",
                "",
                "```",
            ]
            for name, plan in explain["plans"].items():
                lines.append(f"-- {name}")
                lines += plan
            lines.append("```")
    if NOTES.exists() and not report["smoke"]:
        lines += ["", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"


def replace_section(path: Path, text: str) -> None:
    """Put `text` in place of this section of `path` (between its markers), leaving every other section as it is."""
    from bench import harness

    harness.write_section(path, "bulk-chunked", text, heading=SECTION)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="2,000 subscribers in the smoke database, seconds")
    parser.add_argument("--runs", type=int, help="add/remove runs against the floor (default 5; 1 with --smoke)")
    parser.add_argument("--chunk-size", type=int, help="set subscribers.actions.CHUNK_SIZE for this process")
    parser.add_argument("--no-bot", action="store_true", help="skip the upserts during a bulk change")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    parser.add_argument("--idle-calls", type=int, help="idle upserts (default 300)")
    parser.add_argument(
        "--no-key-lock",
        action="store_true",
        help="experiment: the upsert locks FOR NO KEY UPDATE (patched in this process only)",
    )
    parser.add_argument(
        "--bot-random", action="store_true", help="the bot upserts random subscribers, not those of the current chunk"
    )
    parser.add_argument("--save", help="also keep the raw figures in this file (pickle), to render again with --render")
    parser.add_argument("--render", help="render the section from a --save file instead of measuring")
    parser.add_argument(
        "--write", nargs="?", const=str(ROOT / "BENCHMARKS.md"), help="replace the section in this file"
    )
    args = parser.parse_args(argv)

    if args.render:
        import pickle

        text = section(pickle.loads(Path(args.render).read_bytes()))
        print(text)
        if args.write:
            replace_section(Path(args.write), text)
        return 0
    sys.path.insert(0, str(ROOT))
    from bench import harness

    harness.environment(smoke=args.smoke)
    import django

    django.setup()
    from django.core.management import call_command

    harness.create_database_if_missing()
    call_command("migrate", verbosity=0, interactive=False)
    from bench.load import ensure_dataset
    from subscribers import actions

    ensure_dataset(2_000 if args.smoke else 1_000_000, 20 if args.smoke else 200)
    if args.chunk_size:
        actions.CHUNK_SIZE = args.chunk_size
    if args.no_key_lock:
        # An experiment for a proposal, in this process only: FOR NO KEY UPDATE does not wait for the
        # FOR KEY SHARE locks the chunk's deferred foreign-key checks take on its subscribers.
        from subscribers.models import Subscriber

        def _locked(channel, foreign_id):
            return (
                Subscriber.objects.select_for_update(no_key=True).filter(channel=channel, foreign_id=foreign_id).first()
            )

        actions._locked = _locked
    report = run_all(
        runs=(1 if args.smoke else 5) if args.runs is None else args.runs,
        smoke=args.smoke,
        bot=not args.no_bot,
        profile_run=not args.no_profile,
        idle_calls=args.idle_calls,
        near=not args.bot_random,
    )
    if args.save:
        import pickle

        Path(args.save).write_bytes(pickle.dumps(report))
    if report["compare"] is None:  # --runs 0: an experiment on the bot or the API only
        for phase, data in (report.get("bot") or {}).get("phases", {}).items():
            ups = data["upserts"]
            print(
                f"{phase:7} upserts {len(ups)} p50 {_f(_ms(_pct(ups, 50)))} p99 {_f(_ms(_pct(ups, 99)))} "
                f"max {_f(_ms(max(ups)))}"
            )
        print("api", report.get("api"))
        return 0
    text = section(report)
    print(text)
    if args.write:
        replace_section(Path(args.write), text)
        print(f"Wrote the section into {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
