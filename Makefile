# The few verbs people use. `make help` lists them.
# The app targets Python 3.13 (Azure runs the pinned azure-functions-runtime from 3.13 on).
# Found on PATH, else in pyenv's versions (a pyenv shim for another version fails), else give PYTHON=.
PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
	/usr/local/bin/python3.13 /usr/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# A tool venv for moto (EventBridge pattern matching in the tests): its botocore clashes with our pins.
MOTO_VENV  := .venv-moto
MOTO_STAMP := $(MOTO_VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup lint typecheck check-app checkov test test-fast run replay-sample clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found. Install it (pyenv install 3.13, or your \
	distribution's python3.13 package) or name it: make PYTHON=/path/to/python3.13 $(MAKECMDGOALS)" >&2; exit 1; }
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; \
	then echo "$(VENV) is not Python 3.13: rebuilding it"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# checkov in its own venv: its pins must not constrain the app's (requirements-checkov.txt).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
CHECKOV_DIR   ?= infra
CHECKOV_ARGS  ?= --compact --quiet

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found: make PYTHON=/path/to/python3.13 $(MAKECMDGOALS)" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-checkov.txt
	$(CHECKOV_VENV)/bin/python -m pip check -q --disable-pip-version-check
	touch $@

$(MOTO_STAMP): requirements-moto.txt constraints-moto.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found: make PYTHON=/path/to/python3.13 $(MAKECMDGOALS)" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(MOTO_VENV)
	$(MOTO_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-moto.txt -c constraints-moto.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

setup: $(STAMP) $(MOTO_STAMP) node_modules/.package-lock.json ## create .venv and install pinned Python and npm dependencies

lint: setup ## ruff, and the import layers (core < adapters < shells; pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: setup ## mypy (strict on the packages)
	$(PY) -m mypy

check-app: setup ## load function_app.py in Microsoft's worker runtime (as Azure does); its words if refused
	@$(PY) -m devstack.host.check --app-dir . > /dev/null && echo "worker runtime: function_app.py loads"

# Every Bicep and CloudFormation file under infra/, recursively. A failed check fails, and so does
# a file checkov cannot parse (CKV_PARSE_ERROR_FAIL: by default it only counts them); nothing is
# downloaded from or sent to Prisma Cloud. Skips live in the templates (checkov:skip=ID:reason);
# tests/infra/test_checkov.py holds them to docs/security.md.
checkov: $(CHECKOV_STAMP) ## scan infra/ with checkov: a finding or a parse error fails
	CKV_PARSE_ERROR_FAIL=true BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --directory $(CHECKOV_DIR) \
	  --framework bicep cloudformation --skip-download $(CHECKOV_ARGS)

test-fast: setup $(CHECKOV_STAMP) ## pure tests only (no local stack)
	$(PY) -m pytest -m "not stack and not e2e" -q

test: lint typecheck check-app checkov ## everything CI runs: lint, types, the app in the worker runtime, checkov, all tests
	$(PY) -m pytest -q

replay-sample: setup ## offline replay of the bundled sample deliveries
	$(PY) -m transform replay tests/data/sample_deliveries.jsonl --out out/replay-sample

run: check-app ## run the pipeline on the local stack: 200 realistic conversations, verified report
	$(PY) -m simulator run --profile realistic --conversations 200

clean: ## remove local build and run artefacts
	rm -rf out runs .devstack .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
