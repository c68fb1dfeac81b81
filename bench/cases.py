"""The benchmark's cases, their measurement against two admin baselines, and the main table of BENCHMARKS.md.

The order of the cases is fixed: the pages and API reads first (they write nothing), then the two small
writes (the labels dialog, the API upsert: each puts back what it changed), and the bulk label changes
last (bench/run.py runs them through bench/bulk_chunked.py and VACUUMs afterwards), so no case runs
behind another one's dead rows.
"""

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.http import QueryDict
from django.test import Client

from api.actions import create_api_key
from api.models import ApiKey
from bench.harness import Measured, expect, load_average, measure, percentile, pg_settings
from bench.load import BIG_LABEL
from labels.models import Label
from subscribers.filters import SubscriberFilter, search_by_name
from subscribers.models import Subscriber, SubscriberLabel
from subscribers.queries import REACHABLE_ROWS, count_subscribers, subscribers_matching
from subscribers.search import fold

NOTES = Path(__file__).resolve().parent / "notes.md"
PER_PAGE = 25
DEEPEST_PAGE = REACHABLE_ROWS // PER_PAGE
PLAIN = "/baseline-admin/subscribers/subscriber/"
TUNED = "/tuned-admin/subscribers/subscriber/"
HTMX = {"HX-Request": "true"}
# Calls faster than this get more runs, so that their p95 is not simply the slowest of nine.
CHEAP_SECONDS = 0.15
CHEAP_REPEAT = 20
HTML = "HTML page ↔ HTML pages"


@dataclass
class Side:
    p50: float
    p95: float
    runs: int
    queries: int | None

    @classmethod
    def of(cls, measured: Measured | None):
        if measured is None:
            return None
        return cls(measured.median_ms, measured.p95_ms, len(measured.runs), measured.queries)


@dataclass
class Result:
    case: str
    ours: Side | None
    tuned: Side | None = None
    plain: Side | None = None
    floor_ms: float | None = None
    compared: str = HTML
    counts: str = ""
    note: str = ""
    load: float = 0.0


@dataclass
class Case:
    name: str
    ours: Callable | None
    tuned: Callable | None = None
    plain: Callable | None = None
    compared: str = HTML
    counts: str = ""
    note: str = ""
    # Puts back what the case changed, so the data set stays as loaded.
    after: Callable | None = None


@dataclass
class Run:
    """Everything one run measured, as bench/run.py renders it (and passes between processes as JSON)."""

    results: list[Result] = field(default_factory=list)
    load_before: tuple = ()
    load_after: tuple = ()
    settings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    repeat: int = 9
    smoke: bool = False
    started: str = ""
    vacuum_seconds: list[float] = field(default_factory=list)
    tree: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Run":
        raw = json.loads(text)
        raw["results"] = [
            Result(**{**row, **{key: row[key] and Side(**row[key]) for key in ("ours", "tuned", "plain")}})
            for row in raw["results"]
        ]
        return cls(**raw)


class Bench:
    def __init__(self, *, repeat: int, smoke: bool):
        self.repeat, self.smoke = repeat, smoke
        self.results: list[Result] = []
        operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"first_name": "Bench"})
        operator.groups.add(*Group.objects.filter(name__in=["Operators", "Label managers"]))
        superuser = User.objects.filter(username="bench-admin").first()
        superuser = superuser or User.objects.create_superuser("bench-admin", password=None)
        self.ours, self.admin = Client(), Client()
        self.ours.force_login(operator)
        self.admin.force_login(superuser)
        ApiKey.objects.filter(name="Benchmark").delete()
        _key, full_key = create_api_key("Benchmark", rate_limit_per_minute=10**9)
        self.api = Client(headers={"Authorization": f"Bearer {full_key}"})

    def _repeat_for(self, call: Callable) -> tuple[int, int]:
        """(warm-up calls, timed runs): the first call is the warm-up; cheap calls get more runs."""
        started = time.perf_counter()
        call()
        cheap = time.perf_counter() - started < CHEAP_SECONDS
        return 0, (max(self.repeat, CHEAP_REPEAT) if cheap and not self.smoke else self.repeat)

    def _measure(self, call: Callable | None, *, floor: bool = False) -> Measured | None:
        if call is None:
            return None
        warm, repeat = self._repeat_for(call)
        return measure(call, repeat, warm=warm, floor=floor)

    def add(self, case: Case) -> Result:
        started = time.monotonic()
        load = load_average()[0]
        # Ours first, then the tuned admin, then the plain one: the same order in every case.
        ours = self._measure(case.ours, floor=True)
        tuned = self._measure(case.tuned)
        plain = self._measure(case.plain)
        if case.after:
            case.after()
        row = Result(
            case.name,
            Side.of(ours),
            Side.of(tuned),
            Side.of(plain),
            ours and ours.floor_ms,
            case.compared,
            case.counts,
            case.note,
            load,
        )
        self.results.append(row)
        print(
            f"{case.name:<52} ours {_p(row.ours)}  tuned {_p(row.tuned)}  plain {_p(row.plain)}"
            f"  floor {fmt(row.floor_ms)}  load {load:.1f}  [{time.monotonic() - started:.0f} s]",
            flush=True,
        )
        return row


def _p(side: Side | None) -> str:
    return "—" if side is None else f"{fmt(side.p50)}/{fmt(side.p95)} ({side.queries} q)"


def fmt(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 0.05:
        return "< 0.1 ms"
    if ms >= 10_000:
        return f"{ms / 1000:,.1f} s"
    return f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def _names_by_frequency() -> tuple[tuple[str, int], tuple[str, int]]:
    """(rarest last name, its count), (most common last name, its count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT last_name, count(*) FROM {Subscriber._meta.db_table} "
            "WHERE last_name <> '' GROUP BY last_name ORDER BY count(*), last_name"
        )
        rows = cursor.fetchall()
    return rows[0], rows[-1]


def _counts(query: str, *, admins: bool = True) -> str:
    """Whether our page shows an exact count or an estimate for `query`, beside the admins' exact counts."""
    filters = SubscriberFilter(QueryDict(query.lstrip("?")), queryset=Subscriber.objects.all())
    total = count_subscribers(filters.qs, filtered=filters.is_filtered)
    if total.exact:
        return f"all exact ({total.value:,})" if admins else f"exact ({total.value:,})"
    return f"ours estimated (> {REACHABLE_ROWS:,})" + (", admins exact" if admins else "")


def _found(term: str) -> str:
    """How many subscribers each side's search finds for `term` (ours and the tuned admin share it)."""
    ours = search_by_name(Subscriber.objects.all(), term).count()
    plain = Subscriber.objects.filter(first_name__icontains=term).count()
    plain += Subscriber.objects.filter(last_name__icontains=term).exclude(first_name__icontains=term).count()
    return f"found: ours and tuned {ours:,}, plain {plain:,}" if " " not in term else f"found: ours {ours:,}"


def build_cases(bench: Bench) -> list[Case]:
    """The cases, in the order they run."""
    labels = list(Label.objects.exclude(name="bench_bulk").order_by("pk"))
    big = Label.objects.get(name=BIG_LABEL)
    small = labels[-1]
    any_three, all_two = [labels[2], labels[14], labels[99 % len(labels)]], [labels[0], labels[1]]

    def ours(query=""):
        return expect(200, lambda: bench.ours.get(f"/subscribers/{query}"))

    def tuned(query=""):
        return expect(200, lambda: bench.admin.get(f"{TUNED}{query}"))

    def plain(query=""):
        return expect(200, lambda: bench.admin.get(f"{PLAIN}{query}"))

    def labelled(chosen, mode=None):
        query = "&".join(f"label={label.name}" for label in chosen)
        return f"?{query}&label_mode={mode}" if mode else f"?{query}"

    total = Subscriber.objects.count()
    deepest = max(1, min(REACHABLE_ROWS, total) // PER_PAGE)
    admin_deep = max(1, min(20_000, total // PER_PAGE))
    cases = [
        Case("Subscribers, first page", ours(), tuned(), plain(), counts=_counts("")),
        Case(
            f"Subscribers, deepest page ({deepest})",
            ours(f"?page={deepest}"),
            tuned(f"?p={deepest}"),
            plain(f"?p={deepest}"),
            counts=_counts(""),
            note=f"our paging stops at {REACHABLE_ROWS:,} rows by design",
        ),
        Case(
            f"Admins only: page {admin_deep:,}",
            None,
            tuned(f"?p={admin_deep}"),
            plain(f"?p={admin_deep}"),
            note=f"our table stops at page {DEEPEST_PAGE}",
        ),
    ]
    # (our sort, the admins' column: the tuned admin sorts the channel by its id, as our column does)
    sorts = [("name", "1.2"), ("channel", "3"), ("gender", "4"), ("locale", "5"), ("created", "7"), ("updated", "8")]
    sorts.append(("-updated", "-8"))
    cases += [
        Case(
            f"Sort by {sort.lstrip('-')}" + (", newest first" if sort.startswith("-") else ""),
            ours(f"?sort={sort}"),
            tuned(f"?o={o}"),
            plain(f"?o={o}"),
            counts=_counts(""),
        )
        for sort, o in sorts
    ]
    cases += [
        Case(
            f"Filter: big label ({big.subscribers.count():,})",
            ours(labelled([big])),
            tuned(f"?label={big.pk}"),
            plain(f"?labels__id__exact={big.pk}"),
            counts=_counts(labelled([big])),
        ),
        Case(
            f"Filter: small label ({small.subscribers.count():,})",
            ours(labelled([small])),
            tuned(f"?label={small.pk}"),
            plain(f"?labels__id__exact={small.pk}"),
            counts=_counts(labelled([small])),
        ),
        Case(
            "Filter: any of 3 labels",
            ours(labelled(any_three, "any")),
            tuned(f"?label={','.join(str(label.pk) for label in any_three)}"),
            plain(f"?labels__id__in={','.join(str(label.pk) for label in any_three)}"),
            counts=_counts(labelled(any_three, "any")),
            note="plain admin: labels__id__in (a JOIN, made DISTINCT); tuned: EXISTS",
        ),
        Case(
            "Filter: all of 2 labels",
            ours(labelled(all_two, "all")),
            counts=_counts(labelled(all_two, "all"), admins=False),
            note="neither admin has such a filter",
        ),
        Case(
            "Filter: none of 1 label (big)",
            ours(labelled([big], "none")),
            counts=_counts(labelled([big], "none"), admins=False),
            note="neither admin has such a filter",
        ),
        Case(
            "Filter: none of 1 label (big), sorted by updated",
            ours(labelled([big], "none") + "&sort=updated"),
            counts=_counts(labelled([big], "none"), admins=False),
            note="the pair issue 16 found at 1.95 s; neither admin has such a filter",
        ),
    ]
    (rare, rare_count), (common, common_count) = _names_by_frequency()
    folded = fold(rare)
    cases += [
        Case(
            f"Search: rare name “{rare}” ({rare_count:,})",
            ours(f"?q={rare}"),
            tuned(f"?q={rare}"),
            plain(f"?q={rare}"),
            counts=_counts(f"?q={rare}"),
            note=_found(rare),
        ),
        Case(
            f"Search: common name “{common}” ({common_count:,})",
            ours(f"?q={common}"),
            tuned(f"?q={common}"),
            plain(f"?q={common}"),
            counts=_counts(f"?q={common}"),
            note=_found(common),
        ),
    ]
    if folded != rare.lower():
        cases.append(
            Case(
                f"Search: rare name folded “{folded}”",
                ours(f"?q={folded}"),
                tuned(f"?q={folded}"),
                plain(f"?q={folded}"),
                counts=_counts(f"?q={folded}"),
                note=_found(folded) + " (the plain admin's search does not fold: not the same answer)",
            )
        )
    cases += [
        Case(
            "Labels page with counts",
            expect(200, lambda: bench.ours.get("/labels/")),
            expect(200, lambda: bench.admin.get("/tuned-admin/labels/label/")),
            expect(200, lambda: bench.admin.get("/baseline-admin/labels/label/")),
            counts="ours and tuned: the kept per-label counts; plain: COUNT over the assignments",
        ),
        Case(
            "Labels page sorted by count",
            expect(200, lambda: bench.ours.get("/labels/?sort=-subscriber_count")),
            expect(200, lambda: bench.admin.get("/tuned-admin/labels/label/?o=-4")),
            expect(200, lambda: bench.admin.get("/baseline-admin/labels/label/?o=-4")),
            counts="as above",
        ),
    ]
    subscriber = Subscriber.objects.filter(channel__name="messenger").order_by("pk").first()
    submit, unsubmit = _dialog_submit(bench, subscriber, small)
    upsert, restore_name = _api_upsert(bench, subscriber)
    cases += [
        Case(
            "Manage labels dialog: open",
            expect(200, lambda: bench.ours.get(f"/subscribers/{subscriber.pk}/labels/", headers=HTMX)),
            expect(200, lambda: bench.admin.get(f"{TUNED}{subscriber.pk}/change/")),
            expect(200, lambda: bench.admin.get(f"{PLAIN}{subscriber.pk}/change/")),
            compared="HTML fragment (dialog) ↔ the admins' whole change form: not the same work",
        ),
        Case(
            "API: subscriber list",
            expect(200, lambda: bench.api.get("/api/v1/subscribers")),
            tuned("?o=8"),
            plain("?o=8"),
            compared="JSON endpoint ↔ HTML changelists by updated: not the same work",
            counts="ours: no count (cursor); admins exact",
        ),
        Case(
            "API: subscriber list, big label",
            expect(200, lambda: bench.api.get(f"/api/v1/subscribers?label={big.name}")),
            tuned(f"?o=8&label={big.pk}"),
            plain(f"?o=8&labels__id__exact={big.pk}"),
            compared="JSON endpoint ↔ HTML changelists by updated: not the same work",
            counts="ours: no count (cursor); admins exact",
        ),
        Case(
            "Manage labels dialog: submit",
            submit,
            compared="write",
            note="one label ticked or unticked, in turn",
            after=unsubmit,
        ),
        Case(
            "API: upsert",
            upsert,
            compared="write (JSON)",
            note="an existing subscriber, its first name changed in turn",
            after=restore_name,
        ),
    ]
    return cases


def run_cases(*, repeat: int, smoke: bool, only: str | None, plain: bool = True) -> list[Result]:
    """Every case whose name contains `only` (all without it), in the fixed order; `plain=False` leaves out
    the plain admin (minutes at a million: its full counts and per-row queries)."""
    bench = Bench(repeat=repeat, smoke=smoke)
    for case in build_cases(bench):
        if not only or only.lower() in case.name.lower():
            if not plain:
                case.plain = None
            if case.ours or case.tuned:
                bench.add(case)
    return bench.results


def _dialog_submit(bench: Bench, subscriber: Subscriber, label: Label) -> tuple:
    """(call, restore): each submit adds `label` or takes it away again, as an operator ticking one
    box would; `restore` submits once more if an odd number of submits left it changed."""
    shown = set(subscriber.labels.values_list("pk", flat=True))
    carried = label.pk in shown

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

    call = expect(204, submit)
    return call, lambda: (label.pk in shown) != carried and call()


def _api_upsert(bench: Bench, subscriber: Subscriber) -> tuple:
    """(call, restore): upserts changing the first name in turn; `restore` puts the name back."""
    names = iter(["Ada", "Grace"] * 1000)

    def upsert(first_name=None):
        return bench.api.put(
            f"/api/v1/channels/messenger/subscribers/{subscriber.foreign_id}",
            json.dumps({"first_name": first_name or next(names)}),
            content_type="application/json",
        )

    return expect(200, upsert), lambda: upsert(subscriber.first_name)


# --- the bulk cases: figures from bench/bulk_chunked.py's report, beside the admins' actions ----------------


def bulk_results(report: dict, target: Label, *, smoke: bool) -> list[Result]:
    """The main table's bulk rows from a bench/bulk_chunked.py report (`run_all`), with both admins' actions.

    The admins' actions are timed on a sample of the same selection (add, then remove: the data is left as
    it was), wall clock including COMMIT, and scaled to the whole selection.
    """
    compare = report["compare"]
    selected = compare["selected"]
    selection = {"filters": {"label": [BIG_LABEL]}}
    plain_sample, tuned_sample = (20, 200) if smoke else (1_000, 20_000)
    plain = _admin_action(target, selection, plain_sample, tuned=False)
    tuned = _admin_action(target, selection, tuned_sample, tuned=True)
    rows = []
    for kind in ("add", "remove"):
        ours = [run["wall"] * 1000 for run in compare["results"][("ours", kind)]]
        floor = [run["wall"] * 1000 for run in compare["results"][("floor", kind)]]
        chunks = [chunk for run in compare["results"][("ours", kind)] for chunk in run["chunks"]]
        rows.append(
            Result(
                f"Bulk {kind} one label on {selected:,} subscribers",
                Side(_median(ours), percentile(ours, 95), len(ours), None),
                Side(tuned[kind] * selected / tuned_sample, tuned[kind] * selected / tuned_sample, 1, None),
                Side(plain[kind] * selected / plain_sample, plain[kind] * selected / plain_sample, 1, None),
                _median(floor),
                "write, wall clock incl. COMMIT",
                note=f"ours: chunks of {report['chunk_size']:,} (bench/bulk_chunked.py), median of {len(ours)} runs, "
                f"max chunk {fmt(max(chunks) * 1000)}; floor: one bare "
                f"{'INSERT .. SELECT .. ON CONFLICT DO NOTHING' if kind == 'add' else 'DELETE'}, committed; "
                f"admins: one run on a sample, scaled: plain `labels.{kind}()` per subscriber on {plain_sample:,}, "
                f"tuned {'bulk_create(ignore_conflicts=True)' if kind == 'add' else 'one filtered delete()'} "
                f"on {tuned_sample:,}",
                load=load_average()[0],
            )
        )
    return rows


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _admin_action(target: Label, selection: dict, sample: int, *, tuned: bool) -> dict[str, float]:
    """Milliseconds an admin action takes to add `target` to `sample` selected subscribers, and to remove it.

    Plain: the first action people write, `subscriber.labels.add(label)` in a loop. Tuned: one
    `bulk_create(ignore_conflicts=True)` and one filtered `delete()`. Each in one transaction, committed.
    """
    chosen = list(subscribers_matching(selection).order_by("pk")[:sample])
    ids = [subscriber.pk for subscriber in chosen]
    timings = {}
    started = time.perf_counter()
    with transaction.atomic():
        if tuned:
            SubscriberLabel.objects.bulk_create(
                [SubscriberLabel(subscriber_id=pk, label=target) for pk in ids], ignore_conflicts=True, batch_size=5000
            )
        else:
            for subscriber in chosen:
                subscriber.labels.add(target)
    timings["add"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    with transaction.atomic():
        if tuned:
            SubscriberLabel.objects.filter(label=target, subscriber_id__in=ids).delete()
        else:
            for subscriber in chosen:
                subscriber.labels.remove(target)
    timings["remove"] = (time.perf_counter() - started) * 1000
    return timings


# --- the report ----------------------------------------------------------------------------------------


def describe_data() -> dict:
    return {
        "subscribers": Subscriber.objects.count(),
        "labels": Label.objects.count(),
        "assignments": SubscriberLabel.objects.count(),
    }


def machine() -> str:
    memory = "?"
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {memory} RAM"


def tree_state() -> str:
    """The commit measured, and how many files differed from it (the tree others were changing)."""

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        changed = len([line for line in git("status", "--short").splitlines() if line.strip()])
        return f"commit {git('rev-parse', '--short', 'HEAD')} with {changed} uncommitted file(s) in the tree"
    except (OSError, subprocess.CalledProcessError):
        return "commit ?"


def new_run(**kwargs) -> Run:
    return Run(settings=pg_settings(), started=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", tree=tree_state(), **kwargs)


def _ratio(numerator: Side | None, denominator: Side | None) -> str:
    if numerator is None or denominator is None or denominator.p50 <= 0:
        return "—"
    return f"{numerator.p50 / denominator.p50:,.1f}x"


def _cell(side: Side | None) -> str:
    if side is None:
        return "—"
    return fmt(side.p50) if side.runs == 1 else f"{fmt(side.p50)} / {fmt(side.p95)}"


def settings_line(settings: dict) -> str:
    shown = ", ".join(f"{name} {value}" for name, value in settings.items() if name != "server_version")
    return f"PostgreSQL {settings.get('server_version', '?').split()[0]}: {shown}"


def table(run: Run) -> list[str]:
    lines = [
        "| case | compared | ours p50 / p95 | tuned admin p50 / p95 | plain admin p50 / p95 | SQL floor "
        "| tuned ÷ ours | plain ÷ ours | ours ÷ floor | queries ours / tuned / plain | counts | load | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for row in run.results:
        queries = " / ".join(
            "—" if s is None or s.queries is None else str(s.queries) for s in (row.ours, row.tuned, row.plain)
        )
        floor = None if row.floor_ms is None else Side(row.floor_ms, row.floor_ms, 1, None)
        lines.append(
            f"| {row.case} | {row.compared} | {_cell(row.ours)} | {_cell(row.tuned)} | {_cell(row.plain)} "
            f"| {fmt(row.floor_ms)} | {_ratio(row.tuned, row.ours)} | {_ratio(row.plain, row.ours)} "
            f"| {_ratio(row.ours, floor)} | {queries} | {row.counts} | {row.load:.1f} | {row.note} |"
        )
    return lines


def _loads(values) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def run_header(run: Run) -> list[str]:
    pages = [row for row in run.results if not row.case.startswith("Bulk")]
    runs = sorted({side.runs for row in pages for side in (row.ours, row.tuned, row.plain) if side})
    bulk = sorted({row.ours.runs for row in run.results if row.case.startswith("Bulk") and row.ours})
    data = run.data
    return [
        f"- Date: {run.started}; {run.tree}",
        f"- Machine: {machine()}; {settings_line(run.settings)}",
        f"- Load average (1, 5, 15 min): {_loads(run.load_before)} before, {_loads(run.load_after)} after; "
        "the `load` column is the 1-minute load when the case started",
        f"- Data: {data.get('subscribers', 0):,} subscribers, {data.get('labels', 0)} labels, "
        f"{data.get('assignments', 0):,} assignments" + (" (smoke run)" if run.smoke else ""),
        f"- Timed runs per side and case: {' or '.join(str(n) for n in runs) or '—'} after one warm-up ({run.repeat}; "
        f"{CHEAP_REPEAT} when the warm-up took under {CHEAP_SECONDS * 1000:.0f} ms)"
        + (
            f"; the bulk cases: {' or '.join(str(n) for n in bulk)} runs, the admins' one run on a sample"
            if bulk
            else ""
        )
        + f". p95 is the nearest rank: with {run.repeat} runs, the slowest of them. "
        "`VACUUM ANALYZE` of the whole database before the first case"
        + (f" ({run.vacuum_seconds[0]:.1f} s)" if run.vacuum_seconds else "")
        + (f" and after the bulk cases ({run.vacuum_seconds[1]:.1f} s)" if len(run.vacuum_seconds) > 1 else "")
        + ".",
    ]


def how_we_compare(run: Run) -> list[str]:
    by_name = {row.case.split(" (")[0]: row for row in run.results}
    sort_updated = by_name.get("Sort by updated, newest first")
    big = next((row for row in run.results if row.case.startswith("Filter: big label")), None)
    any_three = by_name.get("Filter: any of 3 labels")
    subscribers = run.data.get("subscribers", 0)

    def ours(row):
        return (
            "not measured in this run"
            if row is None or row.ours is None
            else f"{fmt(row.ours.p50)} (SQL floor {fmt(row.floor_ms)})"
        )

    return [
        "## How we compare",
        "",
        "Figures other projects published for the same operation, **their figures on their hardware and data**, "
        f"beside ours from the table above ({subscribers:,} subscribers, this machine). Different data, schema, "
        "hardware and load: an order of magnitude, not a race.",
        "",
        "| operation | theirs (as published) | their size and hardware | ours |",
        "| --- | ---: | --- | --- |",
        "| Contacts filtered by a condition, first page | Chatwoot: 12,479 ms for the filter query after its "
        'rewrite (110,929 ms before) | 2,980,474 contacts in one account; "a sizable test database", query run by '
        "hand with LIMIT 2000 OFFSET 15 (chatwoot/chatwoot pull request 6802) "
        f"| filter by a label carried by half: {ours(big)}; any of 3 labels: {ours(any_three)}; whole page, 25 rows |",
        "| Contacts page, newest activity first | Mautic: about 40 s for its list query, the page about 1 minute "
        "| 10,000,000 contacts; GCP Cloud SQL Enterprise Plus, 4 CPU, 32 GB (mautic/mautic issue 14369) "
        f"| Subscribers page, last updated first: {ours(sort_updated)}; at a tenth of their size |",
        "",
        "Ours is the whole page (Django, template, every query); theirs are SQL statements alone, which makes the "
        "comparison kinder to them, not to us. Neither project publishes a repeatable benchmark we could run here.",
    ]


def render_main(run: Run) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (bench/run.py); do not edit the tables by hand. Other sections below are "
        "written by their own scripts.",
        "",
        "## Pages, API and bulk changes against two admins",
        "",
        *run_header(run),
        "- Ours: each case a request through the whole Django stack (in-process test client, logged in, DEBUG off); "
        "the bulk rows: bench/bulk_chunked.py's engine runs, wall clock including every COMMIT.",
        "- Plain admin: the changelist a developer writes first (bench/admin_baseline.py `site`); tuned admin: the "
        "same with list_select_related, prefetched labels, `show_full_result_count = False`, `EXISTS` label "
        "filter, index-friendly tie-breaker, our search expression and the kept label counts (`tuned_site`). "
        "Both use the same database and indexes as ours, 25 rows a page.",
        "- SQL floor: the case's most expensive SELECT of ours run alone through the cursor (bulk: one bare "
        "statement of the same pairs, committed): what no implementation of the page can beat.",
        "- `compared` says what is set against what; `counts` whether a side shows an exact count or an estimate.",
        "",
        *table(run),
        "",
        *how_we_compare(run),
    ]
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"


def render_production(run: Run, *, cluster: dict) -> str:
    lines = [
        "## The same cases on recommended production settings",
        "",
        "Produced by `make bench BENCH_ARGS=--production-cluster` (bench/run.py, bench/production.py): a separate "
        "PostgreSQL cluster created for the run (`initdb` into a temporary directory, its own port), the same "
        "generator and seed loading the same data set, the cases above run against it, then the cluster stopped "
        "and removed. The server runs on the same two cores as the default one.",
        "",
        "Settings given to the cluster (PGTune's web-application profile for this machine's RAM and cores, "
        "SSD storage, and `jit = off`):",
        "",
        "| setting | value | default cluster |",
        "| --- | --- | --- |",
    ]
    for name, value in cluster["settings"].items():
        lines.append(f"| {name} | {value} | {cluster['default'].get(name, '—')} |")
    lines += [
        "",
        f"The whole run (cluster created, data loaded and vacuumed, cases measured, cluster removed) took "
        f"{cluster['total_seconds'] / 60:.0f} min. The cases of the table above"
        + (f", except: {cluster['subset']}." if cluster.get("subset") else "."),
        "",
        *run_header(run),
        "",
        *table(run),
    ]
    return "\n".join(lines) + "\n"
