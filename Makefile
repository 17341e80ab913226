# Quick start: `make demo` and `make test` on a fresh machine (Debian 12, Python 3.11, Node 20).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
DEMO_HOME ?= $(CURDIR)/.openledger/demo

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-thorough screenshots bench fuzz serve lint venv node browser clean

venv: $(VENV_STAMP)
node: $(NODE_STAMP)

# Debian's chromium for the web app's browser tests (Playwright drives it; nothing is downloaded).
browser:
	bash scripts/install-chromium.sh

# torch first, from the CPU build on disk; then the project, pinned, with its dev tools.
$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.3
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: venv node
	@mkdir -p $(DEMO_HOME)
	OPENLEDGER_HOME=$(DEMO_HOME) OPENLEDGER_PASSWORD=$${OPENLEDGER_PASSWORD:-demo} $(BIN)/openledger init
	OPENLEDGER_HOME=$(DEMO_HOME) OPENLEDGER_PASSWORD=$${OPENLEDGER_PASSWORD:-demo} $(BIN)/openledger demo
	OPENLEDGER_HOME=$(DEMO_HOME) $(BIN)/openledger chain down

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# pytest-xdist workers for make test (tests/parallel.py); PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

# The store tests also run against a real PostgreSQL unless OPENLEDGER_TEST_PG=0.
test: venv node browser lint
	@if [ "$${OPENLEDGER_TEST_PG:-1}" != "0" ]; then \
		url=$$(set -o pipefail; bash scripts/pg-test-server.sh start | tail -n 1) || exit 1; \
		export OPENLEDGER_TEST_PG_URL="$$url"; \
	fi; \
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

# The same suite with the contracts' state machines and the API fuzzing drawing more examples.
test-thorough:
	OPENLEDGER_TEST_THOROUGH=1 $(MAKE) test

# Rewrite the README's pictures of the web app (docs/screenshots) from the browser tests.
screenshots: venv node browser
	OPENLEDGER_SCREENSHOTS=1 $(PY) -m pytest -q tests/web/test_browser.py

bench: venv node
	$(PY) benchmarks/bench_gas.py
	$(PY) benchmarks/bench_dedup.py
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_attribution_speed.py
	$(PY) benchmarks/bench_attribution_quality.py
	$(PY) benchmarks/bench_spans.py
	$(PY) benchmarks/bench_rag.py
	$(PY) benchmarks/bench_serving.py
	$(PY) benchmarks/bench_ledger.py
	$(PY) benchmarks/bench_agents.py
	$(PY) benchmarks/bench_cli.py

# schemathesis over the whole API, longer than the suite's bounded run: benchmarks/results/fuzz.json
fuzz: venv node
	$(PY) benchmarks/fuzz.py

serve: venv node
	OPENLEDGER_HOME=$${OPENLEDGER_HOME:-$(DEMO_HOME)} OPENLEDGER_PASSWORD=$${OPENLEDGER_PASSWORD:-demo} $(BIN)/openledger init
	OPENLEDGER_HOME=$${OPENLEDGER_HOME:-$(DEMO_HOME)} OPENLEDGER_PASSWORD=$${OPENLEDGER_PASSWORD:-demo} $(BIN)/openledger serve

clean:
	-bash scripts/pg-test-server.sh stop
	rm -rf $(VENV) node_modules .openledger .pgtest .pytest_cache .ruff_cache
