# Every target sets up .venv first (once, and again when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run demo bench test test-fast lint docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dynamo-toolkit needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## run: the main job: a 3-node local cluster in the foreground (Ctrl-C stops it)
run: venv
	$(BIN)/dtk cluster run --nodes 3 --dir .dtk-cluster

## demo: a narrated 5-node in-process cluster on the simulated network
demo: venv
	$(BIN)/dtk demo

## bench: the reference server against Redis, plain and TLS (needs redis-server; writes docs/benchmarks)
bench: venv
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/reference_server.py
	$(BIN)/python benchmarks/tls_cost.py

## test: lint and types, then the whole suite (unit, conformance, scenarios, docs build)
test: venv
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

## test-fast: the suite without real node processes (marker live) and the docs build (docs)
test-fast: venv
	$(BIN)/pytest -m "not live and not docs" -n auto

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy tests
	$(BIN)/lint-imports

docs: venv
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) docs/_build .pytest_cache .mypy_cache .ruff_cache .hypothesis
