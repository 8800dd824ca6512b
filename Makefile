# The few verbs people use. `make help` lists them.
# The app targets Python 3.13 (Azure runs the pinned azure-functions-runtime from 3.13 on).
# Found on PATH, else in pyenv's versions (a pyenv shim for another version fails), else give PYTHON=.
PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
	/usr/local/bin/python3.13 /usr/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup lint typecheck test test-fast run replay-sample clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found. Install it (pyenv install 3.13, or your \
	distribution's python3.13 package) or name it: make PYTHON=/path/to/python3.13 $(MAKECMDGOALS)" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

setup: $(STAMP) node_modules/.package-lock.json ## create .venv and install pinned Python and npm dependencies

lint: setup ## ruff, and the import layers (core < adapters < shells; pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: setup ## mypy (strict on the packages)
	$(PY) -m mypy

test-fast: setup ## pure tests only (no local stack)
	$(PY) -m pytest -m "not stack and not e2e" -q

test: lint typecheck ## everything CI runs: lint, types, all tests (starts the local stack itself)
	$(PY) -m pytest -q

replay-sample: setup ## offline replay of the bundled sample deliveries
	$(PY) -m transform replay tests/data/sample_deliveries.jsonl --out out/replay-sample

run: setup ## run the pipeline on the local stack: 200 realistic conversations, verified report
	$(PY) -m simulator run --profile realistic --conversations 200

clean: ## remove local build and run artefacts
	rm -rf out runs .devstack .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
