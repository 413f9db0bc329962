# resim: the two commands a newcomer needs are `make demo` and `make test`.
#
# Installs come from uv.lock (all runtime and dev dependencies, with hashes).
# uv itself is installed at a pinned version into .tools/ with the machine's
# Python, so a newcomer needs only Python 3.11+ and make.
PYTHON     ?= python3
UV_VERSION := 0.13.9
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never
# xdist workers for the suite: one per core ("auto"); 0 runs in one process
WORKERS    ?= auto
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-latest lock lint typecheck unit integration slow bench walkthrough clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --extra dev --python $(PYTHON) --quiet
	touch $(STAMP)

## demo: set up, migrate a fresh SQLite database, start API + worker + SM-DP+ emulator + mail capture
## DEMO_ARGS: more flags for `resim demo`, e.g. DEMO_ARGS='--api-port 8601' (`resim demo --help`).
## A taken port stops it at once, in one line, before anything is installed
## (src/resim/entrypoints/demo_ports.py needs only the machine's Python).
DEMO_ARGS ?=
demo:
	$(eval DEMO_PORT_PROBLEM := $(shell $(PYTHON) src/resim/entrypoints/demo_ports.py $(DEMO_ARGS)))
	$(if $(DEMO_PORT_PROBLEM),$(error $(DEMO_PORT_PROBLEM)))
	@$(MAKE) --no-print-directory $(STAMP)
	$(BIN)/resim demo $(DEMO_ARGS)

## walkthrough: one replacement through the public API, printed step by step; exits.
## Every listener on a free port (0), so it runs beside a `make demo`.
walkthrough: $(STAMP)
	$(BIN)/resim demo --walkthrough --api-port 0 --smdp-port 0 --smtp-port 0 --sms-port 0

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

## test: lint, types and the test suite on SQLite and PostgreSQL over both cores;
## the slow suites (crash, browser, load) run too when CI=true, or alone with
## `make test-slow`. mypy runs beside the suite (its output is printed after).
## Ends with the wall time, the slowest tests and what was skipped.
test: $(STAMP)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint || exit 1; \
	$(BIN)/mypy > .mypy.out 2>&1 & mypy_pid=$$!; \
	RESIM_TEST_NOT_RUN_FILE=.not-run.out $(BIN)/pytest -q -m "not slow" -n $(WORKERS) \
	  --dist worksteal --durations=20 $(PYTEST_ARGS); rc=$$?; \
	wait $$mypy_pid; mypy_rc=$$?; cat .mypy.out; rm -f .mypy.out; \
	[ $$mypy_rc -eq 0 ] || rc=1; \
	if [ $$rc -eq 0 ] && [ "$$CI" = "true" ]; then \
	  $(MAKE) --no-print-directory test-slow; rc=$$?; \
	elif [ $$rc -eq 0 ]; then \
	  echo "slow suites (crash, browser, load) not run here: 'make test-slow' runs them; CI does"; \
	fi; \
	echo "make test: $$(( $$(date +%s) - start )) s wall, exit $$rc"; \
	cat .not-run.out 2>/dev/null; rm -f .not-run.out; exit $$rc

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow -n $(WORKERS) --dist loadgroup --durations=20 $(PYTEST_ARGS); \
	  rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

## test-latest: the suite against the newest releases of every dependency (not
## the lock), in .venv-latest, so drift is seen before `make lock` brings it in
test-latest: $(UV)
	$(UV) venv --quiet --python $(PYTHON) .venv-latest
	$(UV) pip install --quiet --python .venv-latest/bin/python --upgrade -e '.[dev]'
	.venv-latest/bin/pytest -q -m "not slow" -n $(WORKERS) --durations=20 $(PYTEST_ARGS)

## lock: move uv.lock to the newest releases that pyproject.toml allows (on purpose)
lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/contract

bench: $(STAMP)
	$(BIN)/python -m resim.bench
	$(BIN)/python -m resim.bench import
	$(BIN)/python -m resim.bench camara

clean:
	rm -rf $(VENV) .venv-latest $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
