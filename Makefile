# The two commands a newcomer needs: `make run` and `make test`.
PYTHON_VERSION := $(shell cat .python-version)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test lint bench bench-broadcasts bench-csv bench-search bench-pages clean messages translations serve loadtest

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

# After changing strings: collect them into locale/fr/LC_MESSAGES/*.po, then translate what is new there
# (tests/test_i18n.py fails until every string has its French).
translations: $(STAMP)
	DEBUG=1 $(PY) manage.py makemessages --locale fr --no-obsolete --ignore=tests --ignore=bench --ignore=staticfiles
	DEBUG=1 $(PY) manage.py makemessages --domain djangojs --locale fr --no-obsolete --ignore=static/vendor

# The translations: locale/*/LC_MESSAGES/*.po compiled to .mo (needs gettext's msgfmt).
messages: $(STAMP)
	@command -v msgfmt >/dev/null 2>&1 || { echo "gettext is needed for the translations: apt-get install gettext"; exit 1; }
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv --verbosity 0

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

# A million subscribers on PostgreSQL (DATABASE_URL, default hexasubs_bench), ours against a plain and a tuned
# admin: writes its sections of BENCHMARKS.md. `make bench BENCH_ARGS=--smoke` runs a tiny data set instead (a
# minute); `BENCH_ARGS=--production-cluster` also runs the cases on a temporary cluster with production settings.
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# CSV import and export of a million subscribers (database hexasubs_bench_csv, its own): prints its section of
# BENCHMARKS.md; `make bench-csv BENCH_CSV_ARGS=--write` writes it, `--smoke` runs 2,000 rows in seconds.
bench-csv: $(STAMP)
	$(PY) bench/csv_import.py $(BENCH_CSV_ARGS)

# Broadcasts at a million subscribers (database hexasubs_bench_bc): the audience's freeze and the dispatch rate
# with 1, 2 and 4 workers; writes the "Broadcasts" section of BENCHMARKS.md.
bench-broadcasts: $(STAMP)
	$(PY) bench/broadcasts.py --write $(BENCH_ARGS)

# The name search at a million subscribers (the benchmark's data set): the page and the API's `q`, median and
# p95 with the load average; `make bench-search BENCH_SEARCH_ARGS=--plans` adds EXPLAIN ANALYZE. Prints only.
bench-search: $(STAMP)
	$(PY) bench/search.py $(BENCH_SEARCH_ARGS)

# Every page and dialog timed on whatever DATABASE_URL holds (SQLite included): p50, p95, CPU, floor, queries;
# prints only. `make bench-pages BENCH_PAGES_ARGS="--only Labels"` for some; bench/pages.py says how to make data.
bench-pages: $(STAMP)
	$(PY) bench/pages.py $(BENCH_PAGES_ARGS)

# Production: settings from the environment (README, "Production"), then gunicorn with WEB_WORKERS workers
# and TASK_WORKERS background workers (bulk label changes, webhooks); Ctrl-C stops them all.
SERVE_BIND ?= 127.0.0.1:8000
WEB_WORKERS ?= 3
TASK_WORKERS ?= 2
serve: $(STAMP) messages
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py check --deploy
	@workers=""; for _ in $$(seq $(TASK_WORKERS)); do $(PY) manage.py db_worker & workers="$$workers $$!"; done; \
	trap 'kill $$workers 2>/dev/null' EXIT INT TERM; \
	BIND=$(SERVE_BIND) WEB_CONCURRENCY=$(WEB_WORKERS) $(VENV)/bin/gunicorn --config gunicorn.conf.py hexasubs.wsgi

# A bounded load test on loopback (gunicorn on PostgreSQL, bot API and operators, then during a bulk change):
# writes the "Load test" section of BENCHMARKS.md. `make loadtest LOADTEST_ARGS="--duration 60"` for longer.
loadtest: $(STAMP)
	$(PY) bench/loadtest.py $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
