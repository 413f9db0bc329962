# resim: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint typecheck unit integration slow bench walkthrough clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: set up, migrate a fresh SQLite database, start API + worker + SM-DP+ emulator + mail capture
demo: $(STAMP)
	$(BIN)/resim demo

## walkthrough: one replacement through the public API, printed step by step; exits
walkthrough: $(STAMP)
	$(BIN)/resim demo --walkthrough --api-port 0 --smdp-port 0 --smtp-port 0

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

## test: lint, types and the test suite on SQLite and PostgreSQL; the slow suites
## (crash, browser, load) run too when CI=true, or alone with `make test-slow`
test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -m "not slow"
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory test-slow; \
	 else echo "slow suites (crash, browser) skipped here: run 'make test-slow'; CI runs them"; fi

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/contract

bench: $(STAMP)
	$(BIN)/python -m resim.bench
	$(BIN)/python -m resim.bench import
	$(BIN)/python -m resim.bench camara

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
