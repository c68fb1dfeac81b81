import os
import subprocess
import sys
from pathlib import Path

import pytest

from hexasubs import priority

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, **env):
    """Run manage.py in an environment holding only `env`, as a fresh production host would."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "ENV_FILE": ""}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )


def test_production_without_a_secret_key_fails_with_a_clear_message():
    result = _manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_malformed_value_fails_with_a_clear_message():
    result = _manage("check", SECRET_KEY="x" * 60, DEBUG="perhaps")
    assert result.returncode != 0
    assert "The environment variable DEBUG is malformed" in result.stderr


def test_a_malformed_database_url_fails_with_a_clear_message():
    result = _manage("check", DEBUG="1", DATABASE_URL="nonsense://nowhere")
    assert result.returncode != 0
    assert "DATABASE_URL is malformed" in result.stderr


def test_a_worker_niceness_out_of_range_fails_with_a_clear_message():
    result = _manage("check", DEBUG="1", WORKER_NICENESS="25")
    assert result.returncode != 0
    assert "WORKER_NICENESS is malformed" in result.stderr


def test_the_worker_lowers_its_own_priority_before_it_works(monkeypatch, settings):
    from subscribers.management.commands import db_worker

    calls = []
    monkeypatch.setattr(priority.os, "nice", calls.append)
    monkeypatch.setattr(db_worker.DatabaseWorkerCommand, "handle", lambda self, *args, **options: calls.append("work"))
    settings.WORKER_NICENESS = 10
    db_worker.Command().handle()
    settings.WORKER_NICENESS = 0
    db_worker.Command().handle()
    assert calls == [10, "work", "work"]


def test_the_import_command_lowers_its_own_priority_before_it_reads(monkeypatch, settings, tmp_path, db):
    from django.core.management import call_command

    from subscribers.management.commands import import_subscribers

    calls = []

    def store_file(*args, **kwargs):  # the import's first step: far enough
        calls.append("read")
        raise KeyboardInterrupt

    monkeypatch.setattr(priority.os, "nice", calls.append)
    monkeypatch.setattr(import_subscribers.imports, "store_file", store_file)
    settings.WORKER_NICENESS = 7
    path = tmp_path / "people.csv"
    path.write_text("channel,foreign_id\nmessenger,a\n")
    with pytest.raises(KeyboardInterrupt):
        call_command("import_subscribers", str(path))
    assert calls == [7, "read"]


def test_check_deploy_is_clean_with_production_values():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="k3y-" + "x" * 60, ALLOWED_HOSTS="subs.example.com"
    )
    assert result.returncode == 0, result.stderr


def test_a_local_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=from-the-env-file\n")
    assert _manage("check", ENV_FILE=str(env_file)).returncode == 0
    result = _manage("check", ENV_FILE=str(env_file), DEBUG="perhaps")
    assert "The environment variable DEBUG is malformed" in result.stderr


def test_make_run_writes_a_git_ignored_env_file_once(tmp_path):
    make = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), f"PY={sys.executable}", ".env"]
    subprocess.run(make, cwd=tmp_path, check=True, capture_output=True)
    written = (tmp_path / ".env").read_text()
    assert written.startswith("DEBUG=1\nSECRET_KEY=") and len(written.split("SECRET_KEY=")[1].strip()) >= 50
    subprocess.run(make, cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / ".env").read_text() == written  # kept, so sessions stay valid
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_make_run_serves_on_the_port_asked_for_and_compiles_the_translations():
    dry_run = subprocess.run(["make", "-n", "run", "PORT=8001"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "runserver 127.0.0.1:8001" in dry_run.stdout
    assert "compilemessages" in dry_run.stdout
    tests = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert tests.stdout.index("compilemessages") < tests.stdout.index("pytest")


@pytest.mark.django_db(transaction=True)
def test_the_live_server_threads_never_share_one_sqlite_connection(live_server):
    """Django shares an in-memory SQLite database's one connection between the live server's request threads,
    and concurrent requests then read rows that are there as missing (a logged-in user sent to the login
    page): the tests' SQLite database is a file (conftest's django_db_modify_db_settings)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL gives each thread its own connection")
    assert not connection.is_in_memory_db()
    assert not live_server.thread.connections_override
