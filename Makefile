# Developer entry points. `make run` starts the whole stack (embedded PostgreSQL and
# Redis when DATABASE_URL / REDIS_URL are unset); `make test` and `make lint` are what
# CI runs (see .ci/run).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv .venv run test lint fmt migrate clean reset-dev-data

venv .venv: $(STAMP)

# Re-installs whenever pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m helpdesk.devrun

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP)
	$(BIN)/python -m alembic upgrade head

clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

# Deletes local dev data: embedded PostgreSQL/Redis data, secret key, demo password.
reset-dev-data:
	@if [ -f instance/pg/postmaster.pid ]; then \
		echo "instance/pg looks in use: stop 'make run' first" \
			"(or delete instance/pg/postmaster.pid if no server runs)"; exit 1; fi
	rm -rf instance
