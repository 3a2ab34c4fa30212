# The portal — `make` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
.DEFAULT_GOAL := help

.PHONY: help install run test test-fast bench lint fmt messages clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install the portal with its test tools

run: install ## Migrate, seed demo data and start Redis, the worker and the web server on :8000
	$(VENV)/bin/portal run --demo

test: install ## Run the whole suite (DATABASE_URL and REDIS_URL select other servers)
	$(PY) -m pytest

test-fast: install ## Run the suite without browser and process tests
	$(PY) -m pytest -m "not browser and not slow"

bench: install ## Run the benchmarks and print their figures
	$(PY) -m tests.bench

lint: install ## Check formatting, lint and types
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy portal workers

fmt: install ## Format and fix what can be fixed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

messages: install ## Extract messages and update the fr and en catalogs
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k _ -o portal/locale/messages.pot \
		--no-location --sort-output --project portal .
	$(VENV)/bin/pybabel update -i portal/locale/messages.pot -d portal/locale \
		--width 100 --ignore-obsolete --no-fuzzy-matching

clean: ## Remove the virtual environment and local data (var/)
	rm -rf $(VENV) var test-artifacts
