# Developer entry points. `make run` starts the whole stack (embedded PostgreSQL and
# Redis when DATABASE_URL / REDIS_URL are unset); `make test` and `make lint` are what
# CI runs (see .ci/run).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv .venv run test lint fmt migrate clean reset-dev-data bench

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

# Scale benchmark (not CI; needs PostgreSQL, Redis and wrk): gunicorn + worker + cron driven
# by wrk on generated data. `make bench N=100000` for one size, `make bench SCALE=10k,100k,1m`
# for several and the growth between them. See docs/performance.md.
SCALE ?= 10k,100k
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(N),--tickets $(N),--scale $(SCALE)) $(BENCH_ARGS)

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
