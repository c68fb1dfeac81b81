"""Production operation: HSTS preload only when asked, gunicorn's settings, `make serve` (issue 15)."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import _manage

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {"SECRET_KEY": "k3y-" + "x" * 60, "ALLOWED_HOSTS": "subs.example.com"}
PRINT_HSTS = "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_PRELOAD)"


def test_hsts_preload_is_off_unless_asked_for():
    result = _manage("shell", "--no-imports", "-c", PRINT_HSTS, **PRODUCTION)
    assert result.stdout.split() == ["31536000", "False"], result.stderr
    asked = _manage("shell", "--no-imports", "-c", PRINT_HSTS, SECURE_HSTS_PRELOAD="1", **PRODUCTION)
    assert asked.stdout.split() == ["31536000", "True"], asked.stderr


@pytest.mark.parametrize("preload", ["0", "1"])
def test_check_deploy_is_clean_with_or_without_preload(preload):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", SECURE_HSTS_PRELOAD=preload, **PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_gunicorn_has_several_workers_and_timeouts(monkeypatch):
    for name in ("WEB_CONCURRENCY", "BIND", "GUNICORN_TIMEOUT", "GUNICORN_ACCESS_LOG"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (config["workers"], config["timeout"], config["bind"]) == (3, 30, "127.0.0.1:8000")
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"] == 5


def test_make_serve_starts_gunicorn_and_background_workers():
    env = {**os.environ, "PY": sys.executable}
    plan = subprocess.run(
        ["make", "--dry-run", "--always-make", "serve", f"PY={sys.executable}", "STAMP=pyproject.toml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert "manage.py migrate --no-input" in plan
    assert "manage.py collectstatic --no-input" in plan
    assert "manage.py check --deploy" in plan
    assert "manage.py db_worker" in plan
    assert "gunicorn --config gunicorn.conf.py hexasubs.wsgi" in plan
