# The two commands a newcomer needs: `make run` and `make test`.
PYTHON_VERSION := $(shell cat .python-version)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test lint bench clean messages

$(PY):
	@python$(PYTHON_VERSION) -V >/dev/null 2>&1 || { echo "Python $(PYTHON_VERSION) is needed (pyenv install $(PYTHON_VERSION))."; exit 1; }
	python$(PYTHON_VERSION) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# Development settings for every manage.py command (read by hexasubs/settings.py, git-ignored): written once.
.env: | $(PY)
	@printf 'DEBUG=1\nSECRET_KEY=%s\n' "$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env (DEBUG=1 and a generated SECRET_KEY) for development."

# The translations: locale/*/LC_MESSAGES/*.po compiled to .mo (needs gettext's msgfmt).
messages: $(STAMP)
	@command -v msgfmt >/dev/null 2>&1 || { echo "gettext is needed for the translations: apt-get install gettext"; exit 1; }
	$(PY) manage.py compilemessages --ignore=.venv --verbosity 0

run: $(STAMP) .env messages
	$(PY) manage.py migrate --no-input
	$(PY) manage.py prepare_demo
	@echo "Serving on http://127.0.0.1:$(PORT) (with a background worker for large bulk changes and webhooks)"
	$(PY) manage.py db_worker --interval 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: $(STAMP) messages
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

# A million subscribers on PostgreSQL (DATABASE_URL, default hexasubs_bench), ours against the plain admin:
# writes BENCHMARKS.md. `make bench BENCH_ARGS=--smoke` runs a tiny data set instead (seconds).
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
