"""A temporary PostgreSQL cluster with recommended production settings, for `bench/run.py --production-cluster`.

The machine's own cluster runs PostgreSQL's defaults (shared_buffers 128MB, random_page_cost 4, jit on):
what a fresh install gives, not what anyone runs in production. This module creates a second cluster in a
temporary directory (`initdb`, as the `postgres` user when run as root), starts it on a free port with the
settings below, runs the same cases in a child process (bench/run.py, which loads the same data set with
the same generator and seed), and stops and removes the cluster afterwards, whatever happened.

The settings follow PGTune's "web application" profile for this machine (its RAM and cores, SSD storage,
100 connections), with JIT off (it only costs time on short queries) and at most one parallel worker per
query on two cores.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import harness

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
MAX_CONNECTIONS = 100
MiB = 1024 * 1024


def recommended_settings(ram_bytes: int, cores: int) -> dict[str, str]:
    """PGTune's web-application settings for `ram_bytes` of RAM and `cores` cores (SSD), plus jit off."""
    shared_buffers = min(ram_bytes // 4, 8 * 1024 * MiB)
    workers_per_gather = max(1, cores // 2)
    work_mem = (ram_bytes - shared_buffers) // (MAX_CONNECTIONS * 3) // workers_per_gather
    return {
        "max_connections": str(MAX_CONNECTIONS),
        "shared_buffers": f"{shared_buffers // MiB}MB",
        "effective_cache_size": f"{ram_bytes * 3 // 4 // MiB}MB",
        "maintenance_work_mem": f"{min(ram_bytes // 16, 2048 * MiB) // MiB}MB",
        "work_mem": f"{max(4 * MiB, work_mem) // 1024}kB",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "jit": "off",
        "max_worker_processes": str(cores),
        "max_parallel_workers": str(cores),
        "max_parallel_workers_per_gather": str(workers_per_gather),
        "checkpoint_completion_target": "0.9",
        "wal_buffers": "16MB",
        "min_wal_size": "1GB",
        "max_wal_size": "4GB",
        "default_statistics_target": "100",
        "synchronous_commit": "on",
        "autovacuum": "on",
    }


def _ram_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        return int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1]) * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _default_cluster_settings(names) -> dict[str, str]:
    from django.db import connection

    shown = {}
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    return shown


def _locale() -> str:
    """The default database's collation, so names sort the same way on both clusters."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def run_on_cluster(args, *, subscribers: int, labels: int):
    """(the child's Run, what the report says about the cluster): the cases on a temporary tuned cluster."""
    from bench import cases

    settings = recommended_settings(_ram_bytes(), os.cpu_count() or 1)
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="hx_bench_pg_"))
    data, port = directory / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    print(f"Production cluster: initdb into {data}, port {port}…", flush=True)
    try:
        subprocess.run(
            _as_owner(
                [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", f"--locale={_locale()}"]
            ),
            check=True,
            capture_output=True,
        )
        conf = {**settings, "port": str(port), "listen_addresses": "'127.0.0.1'"}
        conf["unix_socket_directories"] = f"'{directory}'"
        with open(data / "postgresql.conf", "a") as config:
            config.write("\n# bench/production.py\n")
            config.writelines(f"{name} = {value}\n" for name, value in conf.items())
        subprocess.run(
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(directory / "log"), "-w", "start"]),
            check=True,
            capture_output=True,
        )
        result = directory / "run.json"
        child = [sys.executable, str(harness.ROOT / "bench" / "run.py"), "--no-bulk", "--json", str(result)]
        child += ["--database-url", f"postgres://postgres@127.0.0.1:{port}/hexasubs_bench"]
        child += ["--subscribers", str(subscribers), "--labels", str(labels)]
        if args.smoke:
            child.append("--smoke")
        if args.repeat:
            child += ["--repeat", str(args.repeat)]
        if args.only:
            child += ["--only", args.only]
        if not args.production_plain:
            child.append("--no-plain")
        environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        subprocess.run(child, check=True, env=environment, cwd=harness.ROOT)
        run = cases.Run.from_json(result.read_text())
        cluster = {
            "settings": settings,
            "default": _default_cluster_settings(settings),
            "total_seconds": time.monotonic() - started,
            "subset": "; ".join(
                part
                for part in (
                    f"all but the cases whose name contains “{args.only}”" if args.only else "",
                    ""
                    if args.production_plain
                    else "the plain admin left out (seconds a page; its ratios are in the table above)",
                    "the bulk changes left out (minutes each)",
                )
                if part
            ),
        }
        return run, cluster
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
            )
        shutil.rmtree(directory, ignore_errors=True)
        print("Production cluster stopped and removed.", flush=True)
