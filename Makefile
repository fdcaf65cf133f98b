# Carematix developer commands. `make run` and `make test` are all a fresh machine needs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# supervisord.conf names gunicorn and python bare: find them in the venv first.
export PATH := $(BIN):$(PATH)

FLASK := $(BIN)/flask --app wsgi
# Stamps live in the venv so deleting .venv also forgets what was installed.
INSTALL_STAMP := $(abspath $(VENV))/.carematix-install
TEST_STAMP := $(abspath $(VENV))/.carematix-install-test

# Steps of `run` must happen in order even under `make -j`.
.NOTPARALLEL:

.PHONY: help venv install install-test lock run migrate seed banner screenshots simulate-call test lint format bench clean distclean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "Carematix needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." >&2; \
	  echo "Run again with PYTHON=/path/to/python3.11 (or newer)." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python ## Create the virtual environment (.venv)

# Exact versions from the lock files (scripts/lock.sh), then the project itself without
# resolving anything again: every machine runs the versions the tests ran on.
$(INSTALL_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

# Installing the test extra installs the project too, so it refreshes both stamps.
$(TEST_STAMP): pyproject.toml requirements-test.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(INSTALL_STAMP) $@

install: $(INSTALL_STAMP) ## Install the locked versions and the project into .venv (again when they change)

install-test: $(TEST_STAMP) ## Install the project with its test tools

lock: ## Rebuild requirements.lock and requirements-test.lock from pyproject.toml
	PYTHON=$(PYTHON) bash scripts/lock.sh

migrate: $(INSTALL_STAMP) ## Apply database migrations (DATABASE_URL, default instance/carematix.db)
	$(FLASK) db upgrade

seed: migrate ## Load the demo data (idempotent)
	$(FLASK) seed-demo

banner: $(INSTALL_STAMP)
	@$(BIN)/python scripts/banner.py

# The environment wins over .env: export only the .env keys not already set.
# make run serves plain http on this machine, where Secure cookies would be dropped by
# non-Chrome clients; deployments behind HTTPS keep the default (true).
# supervisord (supervisord.conf) runs the three processes and restarts any that crashes; its
# log, pidfile and child logs go to a folder of this run's own, so two runs never collide.
run: seed banner ## Migrate, seed, print URLs and logins, then start every process (restarted if one crashes)
	@eval "$$($(BIN)/python scripts/dotenv_exports.py)"; \
	  export SESSION_COOKIE_SECURE="$${SESSION_COOKIE_SECURE:-false}"; \
	  run_dir="$$(mktemp -d -t carematix-run.XXXXXX)"; \
	  exec $(BIN)/supervisord --configuration supervisord.conf --nodaemon \
	    --logfile "$$run_dir/supervisord.log" --pidfile "$$run_dir/supervisord.pid" \
	    --childlogdir "$$run_dir"

screenshots: $(TEST_STAMP) ## Refresh docs/screenshots/ from the browser tests
	@bash scripts/ensure_test_packages.sh
	SAVE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/e2e

simulate-call: $(INSTALL_STAMP) ## Place a simulated call against the running voice service (make run)
	$(BIN)/python -m voice.simulate_call

test: $(TEST_STAMP) ## Lint, check import contracts and types, run the whole test suite
	@bash scripts/ensure_test_packages.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	@status=0; $(BIN)/python -m pytest -n auto tests/ || status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests under tests/" >&2; exit 0; fi; \
	  exit $$status

lint: $(TEST_STAMP) ## ruff (lint + format check), import contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(TEST_STAMP) ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(INSTALL_STAMP) ## Run every bench/*.py (they print figures)
	@shopt -s nullglob; found=0; \
	  for script in bench/[!_]*.py; do \
	    found=1; echo "== $$script"; $(BIN)/python "$$script"; \
	  done; \
	  if [ $$found -eq 0 ]; then echo "no benchmarks in bench/"; fi

clean: ## Remove caches and build leftovers (keeps .venv and the database)
	find . -type d -name __pycache__ -not -path './.venv/*' -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .mypy_cache .import_linter_cache build dist *.egg-info

distclean: clean ## Also remove .venv (the database in instance/ is kept)
	rm -rf $(VENV)
