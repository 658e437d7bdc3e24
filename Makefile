# Crypto Oracle — the two commands of the README are `make run` and `make test`.
# Both build the virtualenv from requirements-dev.txt on first use (Python 3.11).
# requirements.txt (production) and requirements-dev.txt (production + tools) are both
# generated from pyproject.toml by `make lock`, every file pinned and hashed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000

export OMP_NUM_THREADS ?= 2

.PHONY: install run test lint format lock slug-size bench clean

$(STAMP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
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

## lock: re-resolve pyproject.toml into requirements.txt and requirements-dev.txt (needs the
## package index). Versions already pinned stay unless pyproject.toml needs others; UPGRADE=1
## moves every package to its newest allowed release. Resolved for the servers' platform,
## Linux x86_64 and Python 3.11; each pin carries the hashes of all of its files.
UV_VERSION ?= 0.13.9
LOCK_FLAGS = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" --annotation-style line $(if $(UPGRADE),--upgrade)
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	.lockenv/bin/uv pip compile pyproject.toml --extra cpu $(LOCK_FLAGS) -o requirements.txt
	.lockenv/bin/uv pip compile pyproject.toml --extra gpu --extra dev \
		--constraint requirements.txt $(LOCK_FLAGS) -o requirements-dev.txt
	rm -rf .lockenv

## slug-size: install requirements.txt as Heroku would and print its compressed size
slug-size:
	$(PYTHON) scripts/slug_size.py

bench: install
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles dist
