# The two commands a newcomer needs: `make run` and `make test`.
PYTHON_VERSION := $(shell cat .python-version)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(PY):
	@python$(PYTHON_VERSION) -V >/dev/null 2>&1 || { echo "Python $(PYTHON_VERSION) is needed (pyenv install $(PYTHON_VERSION))."; exit 1; }
	python$(PYTHON_VERSION) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) manage.py prepare_demo
	@echo "Serving on http://127.0.0.1:8000 (with a background worker for large bulk changes and webhooks)"
	DEBUG=1 $(PY) manage.py db_worker --interval 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

# A million subscribers on PostgreSQL (DATABASE_URL, default hexasubs_bench), ours against the plain admin:
# writes BENCHMARKS.md. `make bench BENCH_ARGS=--smoke` runs a tiny data set instead (seconds).
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
