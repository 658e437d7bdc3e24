# Crypto Oracle — the two commands of the README are `make run` and `make test`.
# Both build the virtualenv from requirements.lock on first use (Python 3.11).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000

export OMP_NUM_THREADS ?= 2

.PHONY: install run test lint format lock bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## run: set up, migrate, import data/, then serve web + Celery worker (+beat) on http://$(HOST):$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_stocks --if-present
	$(BIN)/python manage.py quickstart --hint
	HOST=$(HOST) PORT=$(PORT) VENV=$(VENV) bash scripts/devserver.sh

## test: set up, then run the whole test suite
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff, mypy (strict on predictor/ml), import-linter, Django's system checks
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy cryptooracle predictor
	$(BIN)/lint-imports
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## lock: re-resolve pyproject.toml into requirements.lock (needs the package index)
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet -e ".[dev]"
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^cryptooracle' > requirements.lock
	rm -rf .lockenv

bench: install
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles
