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
import json
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
        "DATABASE_URL": database_url,
        # Persistent connections, as in production (hexasubs/settings.py reads CONN_MAX_AGE).
        "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "60"),
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


# The bot API's curve ------------------------------------------------------------------------------------
#
# `--bot-api`: the bot API alone, at 1, 8 and 32 connections, driven by wrk (C, so the client takes little
# of the two cores the server needs): repeat visits (the stored profile sent again, as a bot does on every
# message), first contacts (a new foreign id each time), and batches of 500 (people already there, their
# stored profiles; and new people). Each point's throughput, p50 and p99 (wrk's), errors and load average.

BOT_API_START, BOT_API_END = "<!-- bot-api -->", "<!-- /bot-api -->"
BOT_API_CLIENTS = (1, 8, 32)
BATCH_SIZE = 500
SAMPLE = """
import json
from subscribers.models import Subscriber
people = Subscriber.objects.filter(channel__name="messenger").order_by("?")[:{count}]
fields = ["first_name", "last_name", "gender", "locale", "timezone", "country"]
print(json.dumps([{{"foreign_id": p.foreign_id, **{{f: str(getattr(p, f)) for f in fields}}}} for p in people]))
"""

LUA_COMMON = """
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
math.randomseed({seed})
"""

LUA_REPEAT = """
local people = {{ {people} }}
function request()
  local person = people[math.random(#people)]
  return wrk.format("PUT", "/api/v1/channels/messenger/subscribers/" .. person[1], nil, person[2])
end
"""

LUA_FIRST = """
local counter = 0
function request()
  counter = counter + 1
  local id = "wrk-{run}-" .. tid .. "-" .. counter
  return wrk.format("PUT", "/api/v1/channels/messenger/subscribers/" .. id, nil,
    '{{"first_name":"Load","last_name":"Contact ' .. counter .. '","locale":"en-US"}}')
end
"""

LUA_BATCH_KNOWN = """
local items = {{ {items} }}
function request()
  local start = math.random(0, #items - {size})
  local chosen = {{}}
  for i = 1, {size} do chosen[i] = items[start + i] end
  return wrk.format("POST", "/api/v1/subscribers/batch", nil,
    '{{"channel":"messenger","subscribers":[' .. table.concat(chosen, ",") .. ']}}')
end
"""

LUA_BATCH_NEW = """
local counter = 0
function request()
  local chosen = {{}}
  for i = 1, {size} do
    counter = counter + 1
    local id = "wrkb-{run}-" .. tid .. "-" .. counter
    chosen[i] = '{{"foreign_id":"' .. id .. '","first_name":"Load","last_name":"Batch ' .. counter .. '"}}'
  end
  return wrk.format("POST", "/api/v1/subscribers/batch", nil,
    '{{"channel":"messenger","subscribers":[' .. table.concat(chosen, ",") .. ']}}')
end
"""


# What a profile of the repeat visit showed (cProfile of 1,000 PUTs through the whole WSGI stack, in one
# process, on the same database): kept with the figures, since they explain them.
BOT_API_NOTES = [
    "Where a repeat visit's time went, profiled (cProfile of 1,000 PUTs through the whole WSGI stack in one "
    "process, PostgreSQL, load average about 8): **before**, 30 ms each with the database cache (15 ms with "
    "Redis), nearly all of it waiting for PostgreSQL: 8 to 10 round trips, two of them commits that wait for "
    "the disk: the key (1 query), the channel (1), the rate-limit counter in the database cache (7 statements: "
    "a count of the cache table, then SELECT, INSERT, ROLLBACK of `add()`, SELECT and UPDATE of `incr()`, a "
    "commit), then BEGIN, the subscriber locked, the UPDATE, COMMIT, the labels. **After**, 3.6 to 3.9 ms: one "
    "statement (`UPDATE … RETURNING` the profile and labels, committed without waiting for the disk: only "
    "`last_seen_at` changed), the key and channel from the process's 10-second cache, the rate limit added to "
    "the shared count every 1 % of the limit. What is left: about 70 % waiting for that statement on a loaded "
    "machine, 0.3 ms of pydantic and model validation of the profile, 0.2 ms of django-ninja building the "
    "answer, under 0.1 ms of middleware (the console's 13 middleware are skipped for `/api/v1/`). A batch of "
    "500 spent 2 s validating before: `Field.validate()` walks the 250 countries' choices for each value; "
    "a set of the allowed values made once brought a batch to about 170 ms, most of it the two statements.",
    "",
    "On this shared machine the load average stays well above its 2 cores while these run (the other "
    "developers' test suites), so each request waits for the scheduler as much as for work, and the client "
    '(wrk) shares the cores with the server: compare with the "before" rows, measured in the same '
    "conditions, and run `make loadtest LOADTEST_ARGS=--bot-api` on a quiet machine for absolute figures.",
    "",
]


def _lua_text(text: str) -> str:
    """`text` as a Lua long string (no escapes inside)."""
    if "]==]" in text:
        raise ValueError(text)
    return f"[==[{text}]==]"


def bot_api_scripts(api_key: str, sample: list[dict], run: str) -> dict[str, tuple[str, int]]:
    """The wrk scripts of the curve, by kind, with the subscribers each request records."""
    common = LUA_COMMON.format(key=api_key, seed=random.randrange(1, 2**31))
    bodies = [
        (person["foreign_id"], json.dumps({k: v for k, v in person.items() if k != "foreign_id"})) for person in sample
    ]
    people = ", ".join(f"{{{_lua_text(foreign_id)}, {_lua_text(body)}}}" for foreign_id, body in bodies[:2000])
    items = ", ".join(_lua_text(json.dumps(person, ensure_ascii=False)) for person in sample)
    return {
        "repeat visits (PUT, same profile)": (common + LUA_REPEAT.format(people=people), 1),
        "first contacts (PUT, new id)": (common + LUA_FIRST.format(run=run), 1),
        f"batch of {BATCH_SIZE}, people already there": (
            common + LUA_BATCH_KNOWN.format(items=items, size=BATCH_SIZE),
            BATCH_SIZE,
        ),
        f"batch of {BATCH_SIZE}, new people": (common + LUA_BATCH_NEW.format(run=run, size=BATCH_SIZE), BATCH_SIZE),
    }


_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(output: str) -> dict:
    """Requests per second, p50 and p99 (seconds), requests and non-2xx answers from `wrk --latency`."""

    def seconds(text):
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
        return float(number) * _WRK_UNITS[unit]

    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "p50": seconds(latency["50"]),
        "p99": seconds(latency["99"]),
        "errors": (int(errors.group(1)) if errors else 0)
        + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0),
    }


def _run_wrk(script_path, base_url, clients, seconds):
    command = ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{round(seconds)}s", "--latency", "--timeout", "10s"]
    result = subprocess.run(
        [*command, "-s", str(script_path), base_url], capture_output=True, text=True, timeout=seconds + 60
    )
    if result.returncode != 0:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return parse_wrk(result.stdout)


def bot_api_curve(args, env, base_url, api_key):
    """Each kind at 1, 8 and 32 connections: a list of result rows."""
    import shutil
    import tempfile

    if not shutil.which("wrk"):
        raise SystemExit("--bot-api needs wrk (apt-get install wrk).")
    sample = json.loads(
        _manage(env, "shell", "--no-imports", "-c", SAMPLE.format(count=20_000)).strip().splitlines()[-1]
    )
    if len(sample) < 2 * BATCH_SIZE:
        raise SystemExit("--bot-api needs at least 1,000 seeded subscribers on the messenger channel.")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        scripts = bot_api_scripts(api_key, sample, run=uuid.uuid4().hex[:8])
        wanted = args.kinds.split(",")
        for kind, (script, per_request) in scripts.items():
            if not any(kind.startswith(prefix) for prefix in wanted):
                continue
            path = Path(folder) / "script.lua"
            path.write_text(script)
            _run_wrk(path, base_url, 8, 2)  # warm-up: every worker connected, every cache filled
            for clients in BOT_API_CLIENTS:
                load_before = os.getloadavg()[0]
                print(f"{kind}: {clients} connection(s) for {args.point_seconds:g} s…")
                result = _run_wrk(path, base_url, clients, args.point_seconds)
                rows.append(
                    {
                        "kind": kind,
                        "clients": clients,
                        "per_request": per_request,
                        **result,
                        "load": (load_before, os.getloadavg()[0]),
                    }
                )
    return rows


def bot_api_section(rows, args, workers_note, load_before, load_after, *, baseline=()) -> str:
    lines = [
        BOT_API_START,
        "## Bot API at conversation speed (gunicorn on PostgreSQL, loopback, wrk)",
        "",
        "Produced by `make loadtest LOADTEST_ARGS=--bot-api` (bench/loadtest.py); do not edit by hand.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores shared with other "
        "developers' test suites (load average beside each point: the 1-minute figure before and after it)",
        f"- Load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after",
        f"- Server: {workers_note}; data: {args.subscribers:,} seeded subscribers and what earlier runs added",
        f"- Each point: wrk for {args.point_seconds:g} s after a 2 s warm-up of each kind; p50 and p99 are wrk's",
        "- Targets: repeat visits ≥ 500/s and first contacts ≥ 300/s with p99 ≤ 100 ms; batches ≥ 5,000 subscribers/s",
        "",
        "| kind | connections | requests/s | subscribers/s | p50 | p99 | errors | load before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in [*({**row, "kind": f"before: {row['kind']}"} for row in baseline), *rows]:
        lines.append(
            f"| {row['kind']} | {row['clients']} | {row['per_second']:,.0f} | "
            f"{row['per_second'] * row['per_request']:,.0f} | {row['p50'] * 1000:,.1f} ms | "
            f"{row['p99'] * 1000:,.1f} ms | {row['errors']} | {row['load'][0]:.1f} → {row['load'][1]:.1f} |"
        )
    lines += ["", "Errors: answers other than 2xx, and connection errors; there should be none."]
    if baseline:
        lines += [
            "",
            '"before": the same load test, just before, on the code before issue 16 (`git archive` of the last '
            "commit, same database, same settings; it has no batch endpoint).",
        ]
    lines += ["", *BOT_API_NOTES, BOT_API_END]
    return "\n".join(lines) + "\n"


def replace_bot_api_section(document: str, section: str) -> str:
    """`document` with its bot-API section replaced by `section` (appended at the end when it has none)."""
    pattern = re.compile(re.escape(BOT_API_START) + r".*?" + re.escape(BOT_API_END) + r"\n?", re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _match: section, document)
    return document.rstrip("\n") + "\n\n" + section


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
    parser.add_argument(
        "--bot-api", action="store_true", help="the bot API's curve at 1, 8 and 32 connections instead (needs wrk)"
    )
    parser.add_argument("--point-seconds", type=float, default=10, help="--bot-api: seconds per point (default 10)")
    parser.add_argument(
        "--kinds", default="repeat,first,batch", help="--bot-api: which kinds (default repeat,first,batch)"
    )
    parser.add_argument("--save-rows", default="", help="--bot-api: also write the figures to this JSON file")
    parser.add_argument(
        "--baseline-rows", default="", help="--bot-api: a --save-rows file of the code before, shown beside"
    )
    args = parser.parse_args(argv)
    _check_bounds(args, parser)
    if not 2 <= args.point_seconds <= 60:
        parser.error("--point-seconds is between 2 and 60")

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _environment(args.database_url, redis_url=args.redis_url, port=port, workers=args.workers)
    _create_database_if_missing(args.database_url)
    api_key, foreign_ids, labels, surnames = _prepare(env, args.subscribers)
    traffic = Traffic(base_url, api_key, foreign_ids, labels, surnames)
    if args.bot_api:
        return _bot_api_main(args, env, base_url, api_key)

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


def _vacuum_analyze(database_url):
    """The machine's PostgreSQL runs with autovacuum off: fresh statistics, or plans made for an empty table."""
    import psycopg

    parts = urlsplit(database_url)
    options = {"host": parts.hostname, "port": parts.port or 5432, "user": parts.username or "postgres"}
    if parts.password:
        options["password"] = parts.password
    with psycopg.connect(dbname=parts.path.lstrip("/"), autocommit=True, **options) as conn:
        conn.execute("VACUUM ANALYZE subscribers_subscriber, subscribers_subscriberlabel, labels_label")


def _bot_api_main(args, env, base_url, api_key) -> int:
    _vacuum_analyze(args.database_url)
    server = _start([str(Path(PYTHON).parent / "gunicorn"), "--config", "gunicorn.conf.py", "hexasubs.wsgi"], env)
    load_before = os.getloadavg()
    try:
        _wait_until_serving(base_url)
        rows = bot_api_curve(args, env, base_url, api_key)
    finally:
        _stop(server)
    note = (
        f"gunicorn, {args.workers} sync workers, persistent connections (CONN_MAX_AGE={env['CONN_MAX_AGE']}), "
        f"cache: {'Redis' if args.redis_url else 'the database'}"
    )
    if args.save_rows:
        Path(args.save_rows).write_text(json.dumps(rows, indent=1))
    baseline = json.loads(Path(args.baseline_rows).read_text()) if args.baseline_rows else []
    section = bot_api_section(rows, args, note, load_before, os.getloadavg(), baseline=baseline)
    print(section)
    if args.output:
        output = Path(args.output)
        output.write_text(replace_bot_api_section(output.read_text() if output.exists() else "", section))
        print(f"Wrote the bot-API section of {output}")
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
