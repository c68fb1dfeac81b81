"""The cache every process shares, so the API's rate limits hold across workers: issue 15, item 2."""

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from hexasubs.cache import DatabaseCache

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("HEXASUBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _environment(tmp_path, **extra):
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "ENV_FILE": "",
        "SECRET_KEY": "two-processes-" + "x" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "ERROR",
        **extra,
    }


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


SETUP_THEN_READ_STDIN = (
    "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'hexasubs.settings'); "
    "django.setup(); exec(sys.stdin.read())"
)
REQUESTS = """
import sys
from django.test import Client
client = Client(headers={"Authorization": "Bearer " + sys.argv[-2]})
print(" ".join(str(client.get("/api/v1/labels").status_code) for _ in range(int(sys.argv[-1]))))
"""


def _statuses_from_two_processes(env, key, per_process):
    """Both processes send their requests at the same time; the statuses each got."""
    # Both within one rate-limit window (a minute): wait out the end of this one if it is close.
    if 60 - time.time() % 60 < 8:
        time.sleep(60 - time.time() % 60 + 0.5)
    script = [sys.executable, "-c", SETUP_THEN_READ_STDIN]
    processes = [
        subprocess.Popen(
            [*script, key, str(per_process)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(REQUESTS, timeout=120) for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    return [int(status) for out, _err in outputs for status in out.split()]


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_a_key_gets_its_limit_across_two_worker_processes_not_twice_it(tmp_path, backend):
    extra = {}
    if backend == "redis":
        if not _redis_reachable():
            if os.environ.get("HEXASUBS_REQUIRE_REDIS"):
                pytest.fail("Redis is required (HEXASUBS_REQUIRE_REDIS) but nothing listens on 127.0.0.1:6379.")
            pytest.skip("No Redis on 127.0.0.1:6379.")
        extra = {"REDIS_URL": REDIS_URL, "CACHE_KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    env = _environment(tmp_path, **extra)
    migrated = _manage(env, "migrate", "--skip-checks", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    created = _manage(env, "create_api_key", "Two workers", "--rate-limit", "10")
    assert created.returncode == 0, created.stderr

    statuses = _statuses_from_two_processes(env, created.stdout.strip(), per_process=10)

    assert sorted(statuses) == [200] * 10 + [429] * 10


# The database cache ------------------------------------------------------------------------------------


def test_without_redis_the_cache_is_the_database(tmp_path):
    result = _settings_of(tmp_path, "from django.conf import settings; print(settings.CACHES['default'])")
    assert "'BACKEND': 'hexasubs.cache.DatabaseCache'" in result.stdout, result.stderr
    assert "'LOCATION': 'hexasubs_cache'" in result.stdout


@pytest.mark.django_db
def test_migrate_creates_the_cache_table():
    database_cache = DatabaseCache("hexasubs_cache", {})
    database_cache.set("greeting", "hello")
    assert database_cache.get("greeting") == "hello"


@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_are_all_counted():
    """Django's own DatabaseCache.incr() reads then writes: two threads counting at once lose counts."""
    cache = DatabaseCache("hexasubs_cache", {})
    cache.add("counter", 0, timeout=60)
    barrier = threading.Barrier(4)

    def count():
        barrier.wait()
        for _ in range(25):
            cache.incr("counter")
        connection.close()

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("counter") == 100
    cache.delete("counter")


@pytest.mark.django_db
def test_incr_keeps_the_expiry_and_refuses_a_missing_key():
    backend = DatabaseCache("hexasubs_cache", {})
    backend.add("window", 5, timeout=60)
    assert backend.incr("window", 2) == 7
    assert backend.get("window") == 7
    with pytest.raises(ValueError):
        backend.incr("nothing-here")


# Configuration and the production check -----------------------------------------------------------------


def _settings_of(tmp_path, code, **extra):
    env = _environment(tmp_path, **extra)
    return _manage(env, "shell", "--no-imports", "-c", code)


def test_redis_url_selects_djangos_redis_cache(tmp_path):
    result = _settings_of(
        tmp_path, "from django.conf import settings; print(settings.CACHES['default'])", REDIS_URL=REDIS_URL
    )
    assert "'BACKEND': 'django.core.cache.backends.redis.RedisCache'" in result.stdout, result.stderr
    assert f"'LOCATION': '{REDIS_URL}'" in result.stdout


def test_a_per_process_cache_in_production_is_warned_about(tmp_path):
    result = _manage(_environment(tmp_path, CACHE_URL="locmemcache://"), "check", "--deploy")
    assert "hexasubs.W001" in result.stderr + result.stdout
    assert "private to each process" in result.stderr + result.stdout


def test_the_default_cache_gives_no_warning(tmp_path):
    result = _manage(_environment(tmp_path), "check", "--deploy")
    assert "hexasubs.W001" not in result.stderr + result.stdout
