"""A bounded load test on loopback: gunicorn with several workers on PostgreSQL, as in production.

    make loadtest                                    # 20 s on 10,000 subscribers, writes BENCHMARKS.md
    .venv/bin/python bench/loadtest.py --duration 60 --workers 4 --concurrency 12
    .venv/bin/python bench/loadtest.py --help

It prepares a PostgreSQL database (DATABASE_URL, default …/hexasubs_load, created if missing, reused),
starts gunicorn (gunicorn.conf.py) and one `db_worker` on 127.0.0.1, then sends traffic from
`--concurrency` clients for `--duration` seconds: the bot API recording first contacts and repeat
visits, and operators browsing the Subscribers page with filters. The second half of the time a bulk
label change runs over every subscriber (`manage.py label_subscribers`, add then remove, again and
again). Every request is timed; the report gives throughput, p50, p99, max and errors per kind and
phase. Everything stops by itself: the traffic at the deadline or after `--max-requests`, the
servers when the script ends, however it ends.
"""

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hexasubs_load"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_DURATION = 300
MAX_REQUESTS = 200_000
SECTION_START, SECTION_END = "<!-- loadtest -->", "<!-- /loadtest -->"
OPERATOR, OPERATOR_PASSWORD = "loadtest-operator", "loadtest-Passw0rd"
LABEL = "loadtest_bulk"
SLOW_SECONDS = 2.0


# Measuring --------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` fall (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Tally:
    """Latencies and outcomes of one kind of request in one phase."""

    seconds: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # no answer: connection refused, reset, timed out

    def record(self, seconds: float, status: int | None) -> None:
        self.seconds.append(seconds)
        if status is None:
            self.failures += 1
        else:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    @property
    def unexpected(self) -> int:
        """Answers that are neither a success nor a redirect: each is a bug for this traffic."""
        return sum(count for status, count in self.statuses.items() if status >= 400) + self.failures

    def row(self, label: str, elapsed: float) -> str:
        count = len(self.seconds)
        return (
            f"| {label} | {count:,} | {count / elapsed:,.1f} | {percentile(self.seconds, 0.5) * 1000:,.0f} ms "
            f"| {percentile(self.seconds, 0.99) * 1000:,.0f} ms | {max(self.seconds, default=0) * 1000:,.0f} ms "
            f"| {self.server_errors} | {self.unexpected} | {sum(s > SLOW_SECONDS for s in self.seconds)} |"
        )


# Traffic ----------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    base_url: str
    api_key: str
    foreign_ids: list[str]
    label_names: list[str]
    surnames: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(15))

    def bot_first_contact(self):
        foreign_id = f"load-{uuid.uuid4().hex[:16]}"
        return "PUT", self._profile_url(foreign_id), self._profile()

    def bot_repeat_visit(self):
        return "PUT", self._profile_url(self.rng.choice(self.foreign_ids)), self._profile()

    def operator_browsing(self):
        choice = self.rng.random()
        params: dict[str, object] = {}
        if choice < 0.25:
            params["page"] = self.rng.randint(1, 20)
        elif choice < 0.5:
            params["q"] = self.rng.choice(self.surnames)
        elif choice < 0.7:
            params["label"] = self.rng.sample(self.label_names, 2)
            params["label_mode"] = self.rng.choice(["any", "all", "none"])
        elif choice < 0.85:
            params.update(channel="messenger", sort=self.rng.choice(["name", "-updated", "created"]))
        else:
            params.update(updated_after="2020-01-01", no_labels="1")
        return "GET", f"{self.base_url}/subscribers/?{urlencode(params, doseq=True)}", None

    def _profile_url(self, foreign_id):
        return f"{self.base_url}/api/v1/channels/messenger/subscribers/{foreign_id}"

    def _profile(self):
        return {"first_name": "Load", "last_name": self.rng.choice(self.surnames), "locale": "en-US"}


KINDS = {
    "bot API: first contact": (Traffic.bot_first_contact, 0.35),
    "bot API: repeat visit": (Traffic.bot_repeat_visit, 0.35),
    "operator: Subscribers page with filters": (Traffic.operator_browsing, 0.30),
}


async def _client_loop(http, bot_headers, traffic, deadline, budget, tallies):
    import httpx

    names, weights = list(KINDS), [weight for _make, weight in KINDS.values()]
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        kind = traffic.rng.choices(names, weights)[0]
        method, url, body = KINDS[kind][0](traffic)
        headers = bot_headers if url.startswith(f"{traffic.base_url}/api/") else None
        started = time.perf_counter()
        try:
            response = await http.request(method, url, json=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError:
            status = None
        tallies.setdefault(kind, Tally()).record(time.perf_counter() - started, status)


async def _send_traffic(traffic, cookies, *, seconds, concurrency, budget):
    import httpx

    tallies: dict[str, Tally] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(cookies=cookies, timeout=30, limits=limits, follow_redirects=False) as http:
        bot_headers = {"Authorization": f"Bearer {traffic.api_key}"}
        await asyncio.gather(
            *(_client_loop(http, bot_headers, traffic, deadline, budget, tallies) for _ in range(concurrency))
        )
    return tallies


def _log_in(base_url):
    """An operator's session cookies, through the real login form."""
    import httpx

    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as http:
        page = http.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = http.post(
            "/accounts/login/", data={"username": OPERATOR, "password": OPERATOR_PASSWORD, "csrfmiddlewaretoken": token}
        )
        if response.status_code != 302:
            raise SystemExit(f"The operator could not log in (HTTP {response.status_code}).")
        return dict(http.cookies)


# Servers ------------------------------------------------------------------------------------------------


def _environment(database_url, *, redis_url, port, workers):
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "ENV_FILE": "",
        "DEBUG": "0",
        "SECRET_KEY": "loadtest-only-" + "k" * 50,
        "DATABASE_URL": database_url + ("&" if "?" in database_url else "?") + "conn_max_age=60",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESS_LOG": "",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        **({"REDIS_URL": redis_url, "CACHE_KEY_PREFIX": "hexasubs-loadtest"} if redis_url else {}),
    }


def _manage(env, *args, capture=True):
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=capture, text=True, timeout=900
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def _create_database_if_missing(database_url):
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = {"host": parts.hostname, "port": parts.port or 5432, "user": parts.username or "postgres"}
    if parts.password:
        admin["password"] = parts.password
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            print(f"Creating the database {name}…")
            conn.execute(f'CREATE DATABASE "{name}"')


PREPARE = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from labels.models import Label
from subscribers.models import Subscriber
user, _ = get_user_model().objects.get_or_create(username="{operator}")
user.set_password("{password}"); user.save()
user.groups.add(*Group.objects.filter(name__in=["Operators", "Label managers"]))
Label.objects.get_or_create(name="{label}", defaults={{"title": "Load test bulk"}})
messenger = Subscriber.objects.filter(channel__name="messenger").order_by("?")
print("|".join(messenger.values_list("foreign_id", flat=True)[:2000]))
print("|".join(Label.objects.exclude(name="{label}").values_list("name", flat=True)))
print("|".join(Subscriber.objects.values_list("last_name", flat=True).distinct()[:200]))
"""


def _prepare(env, subscribers):
    _manage(env, "migrate", "--no-input", "--verbosity", "0")
    _manage(env, "collectstatic", "--no-input", "--verbosity", "0")
    print(f"Seeding {subscribers:,} subscribers (reused when already there)…")
    _manage(env, "seed_demo", "--subscribers", str(subscribers), "--labels", "20")
    output = _manage(
        env, "shell", "--no-imports", "-c", PREPARE.format(operator=OPERATOR, password=OPERATOR_PASSWORD, label=LABEL)
    )
    foreign_ids, labels, surnames = (line.split("|") for line in output.strip().splitlines()[-3:])
    api_key = _manage(env, "create_api_key", "Load test", "--rate-limit", "1000000").strip()
    return api_key, foreign_ids, labels, surnames


def _start(command, env):
    # A session of its own, so the whole group (gunicorn's workers too) can be stopped at the end.
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL)


def _stop(process):
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_serving(base_url, seconds=60):
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"gunicorn did not answer on {base_url} within {seconds} s.")


# Prints a line per finished bulk change, so the report can say how many ran.
BULK_LOOP = (
    "while true; do for kind in add remove; do "
    "{python} manage.py label_subscribers $kind {label} >/dev/null || exit 1; echo $kind; done; done"
)
WARM_UP_SECONDS = 3


# Report -------------------------------------------------------------------------------------------------


def _section(results, args, load_before, load_after, workers_note, bulk_changes) -> str:
    lines = [
        SECTION_START,
        "## Load test (gunicorn on PostgreSQL, loopback)",
        "",
        "Produced by `make loadtest` (bench/loadtest.py); do not edit by hand.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores shared with other "
        "developers' test suites",
        f"- Load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after",
        f"- Server: {workers_note}; data: {args.subscribers:,} seeded subscribers, 20 labels",
        f"- Clients: {args.concurrency} concurrent connections (httpx, asyncio), {args.duration:g} s in two halves; "
        "mix: 35 % bot first contacts (PUT, new foreign id), 35 % repeat visits (PUT, existing subscriber), "
        "30 % operators on the Subscribers page (paging, name search, label any/all/none, channel and sort, "
        "dates with no labels)",
        "- Second half: a bulk label change over every subscriber runs throughout "
        f"(`label_subscribers add`, then `remove`, again and again: {bulk_changes} finished)",
        f"- Targets: no 5xx, no request above {SLOW_SECONDS:g} s",
        "",
        "| phase: requests | requests | per second | p50 | p99 | max | 5xx | errors | over 2 s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase, (tallies, elapsed) in results.items():
        everything = Tally()
        for kind, tally in sorted(tallies.items()):
            lines.append(tally.row(f"{phase}: {kind}", elapsed))
            everything.seconds += tally.seconds
            everything.failures += tally.failures
            for status, count in tally.statuses.items():
                everything.statuses[status] = everything.statuses.get(status, 0) + count
        lines.append(everything.row(f"**{phase}: all**", elapsed))
    lines += ["", "Errors: answers of 4xx or 5xx and requests with no answer; there should be none.", SECTION_END]
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """`document` with its load-test section replaced by `section` (appended when it has none)."""
    pattern = re.compile(re.escape(SECTION_START) + r".*?" + re.escape(SECTION_END) + r"\n?", re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _match: section, document)
    return document.rstrip("\n") + "\n\n" + section


def kept_section(document: str) -> str:
    """The load-test section of `document`, for `make bench` to keep when it rewrites BENCHMARKS.md."""
    found = re.search(re.escape(SECTION_START) + r".*?" + re.escape(SECTION_END) + r"\n?", document, re.DOTALL)
    return "\n" + found.group(0) if found else ""


# Main ---------------------------------------------------------------------------------------------------


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_bounds(args, parser):
    if urlsplit(args.database_url).hostname not in LOOPBACK:
        parser.error("the database must be on this machine (127.0.0.1): the load test stays on loopback")
    if args.redis_url and urlsplit(args.redis_url).hostname not in LOOPBACK:
        parser.error("Redis must be on this machine (127.0.0.1): the load test stays on loopback")
    if not 2 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration is between 2 and {MAX_DURATION} seconds")
    if not 1 <= args.max_requests <= MAX_REQUESTS:
        parser.error(f"--max-requests is between 1 and {MAX_REQUESTS:,}")
    if not 1 <= args.concurrency <= 64 or not 1 <= args.workers <= 16:
        parser.error("--concurrency is at most 64 and --workers at most 16")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20, help="seconds of traffic, in two halves (default 20)")
    parser.add_argument("--subscribers", type=int, default=10_000, help="seeded subscribers (default 10,000)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent client connections (default 8)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="stop after this many requests")
    parser.add_argument("--database-url", default=os.environ.get("LOADTEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default="", help="use Redis as the cache, e.g. redis://127.0.0.1:6379/14")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="where to write ('' for nowhere)")
    args = parser.parse_args(argv)
    _check_bounds(args, parser)

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _environment(args.database_url, redis_url=args.redis_url, port=port, workers=args.workers)
    _create_database_if_missing(args.database_url)
    api_key, foreign_ids, labels, surnames = _prepare(env, args.subscribers)
    traffic = Traffic(base_url, api_key, foreign_ids, labels, surnames)

    servers = [
        _start([str(Path(PYTHON).parent / "gunicorn"), "--config", "gunicorn.conf.py", "hexasubs.wsgi"], env),
        _start([PYTHON, "manage.py", "db_worker", "--interval", "1"], env),
    ]
    bulk = None
    results = {}
    budget = [args.max_requests]
    load_before = os.getloadavg()
    try:
        _wait_until_serving(base_url)
        cookies = _log_in(base_url)
        # Each worker imports and connects on its first requests: not measured.
        asyncio.run(
            _send_traffic(traffic, cookies, seconds=WARM_UP_SECONDS, concurrency=args.concurrency, budget=[500])
        )
        half = args.duration / 2
        print(f"Steady traffic for {half:g} s on {base_url}…")
        started = time.monotonic()
        tallies = asyncio.run(
            _send_traffic(traffic, cookies, seconds=half, concurrency=args.concurrency, budget=budget)
        )
        results["steady"] = (tallies, time.monotonic() - started)
        print(f"The same traffic for {half:g} s during a bulk label change on every subscriber…")
        bulk = subprocess.Popen(
            ["sh", "-c", BULK_LOOP.format(python=PYTHON, label=LABEL)],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)  # the first command is under way
        started = time.monotonic()
        tallies = asyncio.run(
            _send_traffic(traffic, cookies, seconds=half, concurrency=args.concurrency, budget=budget)
        )
        results["during bulk change"] = (tallies, time.monotonic() - started)
    finally:
        for process in [bulk, *servers]:
            if process is not None:
                _stop(process)
    load_after = os.getloadavg()
    bulk_changes = len(bulk.stdout.read().split()) if bulk else 0

    section = _section(
        results,
        args,
        load_before,
        load_after,
        f"gunicorn, {args.workers} sync workers, 1 db_worker, cache: {'Redis' if args.redis_url else 'the database'}",
        bulk_changes,
    )
    print(section)
    if args.output:
        output = Path(args.output)
        output.write_text(replace_section(output.read_text() if output.exists() else "", section))
        print(f"Wrote the load-test section of {output}")
    server_errors = sum(tally.server_errors for tallies, _elapsed in results.values() for tally in tallies.values())
    return 1 if server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
