# Taskdeck: `make run` sets up and starts everything; `make test` sets up and runs all tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false

.PHONY: run test venv system-deps test-deps lint bench clean

# The second install swaps setuptools' editable import finder for a plain path entry: ~10 ms less
# on every python start (it matters to `python -m worker.wrapper`); skipped should setuptools
# drop that mode.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps -e . --config-settings editable_mode=compat 2>/dev/null || true
	touch $(STAMP)

venv: $(STAMP)

# Debian packages: redis-server always; chromium for the browser tests. One apt-get update.
APT_RUN := $(if $(shell command -v redis-server),,redis-server)
# postgresql: the suite runs a second time against a PostgreSQL server the tests start themselves.
APT_TEST := $(APT_RUN) $(if $(wildcard /usr/bin/chromium),,chromium) \
	$(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql)

system-deps:
	@if [ -n "$(strip $(APT_RUN))" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_RUN); fi

test-deps:
	@if [ -n "$(strip $(APT_TEST))" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_TEST); fi

run: venv system-deps
	$(PY) -m app.stack

# The whole suite on SQLite, then every test that touches the database again on PostgreSQL.
test: venv test-deps
	$(PY) -m pytest
	TASKDECK_TEST_DB=postgres $(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: venv
	for f in bench/*.py; do $(PY) $$f; done

clean:
	rm -rf .web .states .taskdeck
