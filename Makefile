# obc-ledger: `make demo` runs the main job on the embedded default (a SQLite file);
# `make test` runs the whole suite: lint and type checks, then the tests (real SQLite, PostgreSQL,
# a Kafka-protocol broker and headless Chromium).
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean install chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/obc-ledger demo

# The whole suite: the static checks first (a few seconds), then every test.
test: lint $(STAMP) chromium
	$(BIN)/python -m pytest

# Static checks: ruff (lint and format), import-linter's layer contracts (pyproject.toml), mypy
# (its files= in pyproject.toml decide what it checks).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The report test loads the auditor's report in headless Chromium (Debian's package); install it only when absent.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# The quick benchmarks (≈ 2 min); the others are listed in bench/README.md
# (bench.projections ≈ 5 min, bench.streaming ≈ 3 min, bench.cluster).
bench: $(STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.close_year

clean:
	rm -rf $(VENV) demo.db demo-output *.egg-info
